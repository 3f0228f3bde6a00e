/* export/export_hf.c - a merged Hugging Face folder: base + adapter folded into the weights. */
#include "export.h"

#include "core/error.h"

int export_merged_hf(Model *m, LoraAdapter *a, const char *dir, DType dtype) {
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16)
        return err_set("%s: type %s: expected f32, f16 or bf16", dir, dtype_name(dtype));
    /* W + scaling * B A at fp32 (lora_merge); model_save_hf casts each weight once */
    if (!a->merged && lora_merge(a, m) != 0) return err_prefix("%s", dir);
    return model_save_hf(m, dir, dtype);
}
