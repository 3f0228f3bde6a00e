/* fuzz/fuzz_gguf_seeds.c - writes small valid GGUF files (every value type, every
 * writable tensor type) into a folder, as seeds for fuzz_gguf. Used by fuzz/run_io.sh. */
#include <stdio.h>

#include "core/error.h"
#include "io/gguf.h"

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: fuzz_gguf_seeds DIR\n"), 2;
    char path[4096];
    float f[64];
    for (int i = 0; i < 64; i++) f[i] = (float)(i - 20) * 0.25f;
    int16_t i16[3] = {-3, 0, 3};
    const char *toks[4] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the"};
    for (int variant = 0; variant < 3; variant++) {
        GgufWriter w;
        gguf_writer_init(&w);
        if (variant == 2) gguf_writer_set_u32(&w, "general.alignment", 8);
        gguf_writer_set_string(&w, "general.architecture", "llama");
        gguf_writer_set_u32(&w, "llama.context_length", 64);
        gguf_writer_set_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        if (variant >= 1) {
            gguf_writer_set_u8(&w, "u8", 1);
            gguf_writer_set_i8(&w, "i8", -1);
            gguf_writer_set_u16(&w, "u16", 2);
            gguf_writer_set_i16(&w, "i16", -2);
            gguf_writer_set_i32(&w, "i32", -3);
            gguf_writer_set_bool(&w, "bool", 1);
            gguf_writer_set_u64(&w, "u64", 4);
            gguf_writer_set_i64(&w, "i64", -4);
            gguf_writer_set_f64(&w, "f64", 0.5);
            gguf_writer_set_array(&w, "a.i16", GGUF_TYPE_INT16, i16, 3);
            gguf_writer_set_array(&w, "a.f32", GGUF_TYPE_FLOAT32, f, 4);
        }
        gguf_writer_set_str_array(&w, "tokenizer.ggml.tokens", toks, NULL, 4);
        gguf_writer_add_tensor_f32(&w, "token_embd.weight", GGML_TYPE_F16, 2, (uint64_t[]){4, 4}, f);
        gguf_writer_add_tensor_f32(&w, "output_norm.weight", GGML_TYPE_F32, 1, (uint64_t[]){4}, f);
        if (variant >= 1) {
            gguf_writer_add_tensor_f32(&w, "q8", GGML_TYPE_Q8_0, 2, (uint64_t[]){32, 2}, f);
            gguf_writer_add_tensor_f32(&w, "bf16", GGML_TYPE_BF16, 1, (uint64_t[]){3}, f);
        }
        snprintf(path, sizeof path, "%s/seed%d.gguf", argv[1], variant);
        if (gguf_writer_write(&w, path)) return fprintf(stderr, "%s\n", err_msg()), 1;
        gguf_writer_free(&w);
    }
    return 0;
}
