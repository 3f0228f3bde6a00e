/* cli/cmd_train.c - `muscle pretrain` (full-parameter training) and `muscle finetune`
 * (LoRA adapters): options, model and data set-up, the trainer, the output folder. */
#include "cli.h"
#include "compat/compat_train.h"
#include "core/cpu.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "model/generate.h"
#include "model/lora_peft.h"
#include "train/trainer.h"
#include "train/data_task.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pretrain_help =
    "usage: muscle pretrain --data FILE --out DIR (--model M | --config CONFIG.json |\n"
    "                       --dim D --layers L --heads H [--kv-heads K] --hidden F [--vocab V])\n"
    "                       [--tokenizer T] [options]\n"
    "Full-parameter training: continues the pretraining of model M (every weight trained),\n"
    "or trains a new model with random weights of the shape given by CONFIG.json (a Hugging\n"
    "Face config.json, or a folder holding one) or by the flags (new models need --tokenizer;\n"
    "--vocab defaults to the tokenizer's size). Writes DIR as a Hugging Face folder\n"
    "(config.json, model.safetensors, the tokenizer file), with train_log.jsonl (one JSON\n"
    "line per step), training.json (settings and results) and checkpoint/ (to --resume).\n"
    "\n"
    "data:\n"
    "  --data FILE           plain text (documents separated by blank lines) or JSON lines\n"
    "                        with a \"text\" field; each document starts with BOS\n"
    "  --data-format F       auto (default: jsonl when the file starts with '{'), text,\n"
    "                        lines (one document per line), jsonl\n"
    "  --val FILE            held-out text for the validation loss (default: the last\n"
    "  --val-frac X          X of the token stream, default 0.05; 0 = no validation)\n"
    "  --seq-len T           tokens per training window (default 256, at most the model's\n"
    "                        context; a new model's context when built from flags)\n"
    "training:\n"
    "  --steps N | --epochs E   optimizer steps, or passes over the data (default 1 epoch)\n"
    "  --batch B             sequences per micro-batch (default 8)\n"
    "  --grad-accum G        micro-batches per step (default 4): B*G sequences a step\n"
    "  --lr X                peak learning rate (default 5e-4)\n"
    "  --min-lr X            learning rate at the end (default lr/10)\n"
    "  --warmup N            steps of linear warm-up (default min(500, steps/20))\n"
    "  --schedule S          cosine (default), linear or constant after the warm-up\n"
    "  --weight-decay X      AdamW weight decay, not on norm weights (default 0.1)\n"
    "  --clip X              max global gradient norm (default 1.0; 0 = off)\n"
    "  --seed N              random weights of a new model and data order (default 42)\n"
    "  --eval-every N        validation loss every N steps (default: 10 times a run)\n"
    "  --val-max N           validate on the first N held-out windows (default 256; 0 = all)\n"
    "  --save-every N        checkpoint every N steps (default 0: at the end only)\n"
    "  --resume              continue the run in DIR from its checkpoint (same settings)\n"
    "  --recompute           keep less in memory: recompute each layer in the backward pass\n"
    "  --quiet               no progress on stderr\n"
    "new model (no --model):\n"
    "  --dim D --layers L --heads H --kv-heads K --hidden F --vocab V [--untied]\n"
    "output:\n"
    "  --dtype f32|bf16|f16  type of the saved weights (default f32)\n"
    "SIGINT/SIGTERM: the current step finishes, a checkpoint is saved, exit 130/143.\n";

static const char *finetune_help =
    "usage: muscle finetune --model M (--data FILE | --task TRAIN [--val VAL]) --out DIR [options]\n"
    "Trains a LoRA adapter on a frozen base model M and writes DIR as a PEFT folder\n"
    "(adapter_config.json, adapter_model.safetensors, the settings in its metadata), with\n"
    "train_log.jsonl (one JSON line per step), training.json and checkpoint/ (to --resume).\n"
    "\n"
    "adapter:\n"
    "  --adapter-init DIR    start from this PEFT adapter (its rank, alpha and targets)\n"
    "  --rank R              default 8\n"
    "  --alpha A             default 2 * rank (scaling alpha/rank = 2, as the paper's 256/128)\n"
    "  --rslora              scaling alpha/sqrt(rank)\n"
    "  --targets LIST        q,k,v,o,gate,up,down or all (default all linear layers)\n"
    "  --bf16                compute with bf16 base weights\n"
    "  --tokenizer T         tokenizer file (default: found beside the model)\n"
    "data: as for muscle pretrain (--data, --data-format, --val, --val-frac, --seq-len), or\n"
    "  --task TRAIN          labelled task file (any format muscle eval reads): the loss is on\n"
    "                        the answer tokens only (the correct choice's continuation, or the\n"
    "                        target); --val VAL, else a seeded 20%% of TRAIN (--val-frac) is held out\n"
    "  --format NAME, --prompt T, --answer T, --prompt-file F, --skip-bad: as for muscle eval\n"
    "compatibility training (--compat; docs/compat.md): the adapter of --adapter-init A2 on\n"
    "M is the new task model M2 and the student's start; M1 = --old-model + --old-adapter:\n"
    "  --compat METHOD       student-wrong (the paper's best), old-correct, none (plain\n"
    "                        distillation from M1), token-likelihood, sequence-likelihood,\n"
    "                        or the baselines focal and elodi\n"
    "  --old-model M1, --old-adapter A1   the old task model (same tokenizer)\n"
    "  --level L             token (default; every position, the paper's), choice\n"
    "                        (multiple choice: KL over the choices' likelihoods) or sequence\n"
    "                        (generation: cross-entropy on M1's greedy outputs, masked per\n"
    "                        instance by ROUGE-1; student-wrong, old-correct or none)\n"
    "  --max-tokens N, --no-repeat-ngram N   sequence level: decoding of the outputs, as\n"
    "                        muscle eval's (default 128, 0)\n"
    "  --distill-tokens S    all (default: context and answer tokens) or answer\n"
    "  --temperature T       of the distilled distributions (default 2)\n"
    "  --ce-weight W         MUSCLE masks: (1-W) * distillation + W * cross-entropy (default 0)\n"
    "  --kd-weight L         focal, elodi: cross-entropy + L * their term (default 1)\n"
    "  --focal-alpha A, --focal-beta B    default 1, 5\n"
    "  --elodi-margin X, --elodi-p P      default 0.5 (nats), 2\n"
    "  --transfer FILE       unlabelled task inputs: distillation terms only\n"
    "  --teacher-topk K      keep K logits a position (default: all when the cache fits\n"
    "  --teacher-cache-mb N  in N MB, default 1024; else 64)\n"
    "  --no-keep-best        with --task the adapter of the epoch with the best held-out\n"
    "                        cross-entropy is kept (validation at every epoch's end); this keeps\n"
    "                        the last one instead\n"
    "training:\n"
    "  --steps N | --epochs E   optimizer steps, or passes over the data (default 3 epochs)\n"
    "  --batch B             sequences per micro-batch (default 4)\n"
    "  --grad-accum G        micro-batches per step (default 8)\n"
    "  --lr X                peak learning rate (default 1e-3)\n"
    "  --min-lr X            learning rate at the end (default 0)\n"
    "  --warmup N            steps of linear warm-up (default min(500, steps/20))\n"
    "  --schedule S          cosine (default), linear or constant\n"
    "  --weight-decay X      AdamW weight decay (default 0, as the paper)\n"
    "  --clip X              max global gradient norm (default 1.0; 0 = off)\n"
    "  --seed N              adapter initialisation and data order (default 42)\n"
    "  --eval-every N, --val-max N, --save-every N, --resume, --recompute, --quiet:\n"
    "                        as for muscle pretrain\n"
    "SIGINT/SIGTERM: the current step finishes, a checkpoint is saved, exit 130/143.\n";


typedef struct {
    int finetune;
    const char *cmd;
    /* shared */
    const char *data, *val, *out, *model, *tokenizer;
    DataFormat format;
    double val_frac;
    long seq_len;         /* 0 = default */
    TrainOptions t;
    int have_steps, have_epochs, have_min_lr, have_eval_every, have_val_frac;
    /* pretrain */
    const char *config;
    long dim, layers, heads, kv_heads, hidden, vocab;
    int untied;
    DType out_dtype;
    /* finetune --task (labelled task data: loss on the answer tokens) */
    const char *task, *task_format, *prompt, *answer, *prompt_file;
    int skip_bad, no_keep_best;
    /* finetune */
    const char *adapter_init;
    long rank;
    double alpha;
    int rslora, bf16, have_rank, have_alpha, have_targets;
    unsigned targets;
    /* finetune --compat */
    int compat;
    CompatConfig cc;
    const char *old_model, *old_adapter, *transfer;
    int have_gen;         /* --max-tokens or --no-repeat-ngram given */
} TrainArgs;

enum {
    O_DATA = 256, O_VAL, O_VAL_FRAC, O_FORMAT, O_OUT, O_MODEL, O_TOK, O_SEQ, O_STEPS, O_EPOCHS, O_BATCH, O_ACCUM, O_LR,
    O_MIN_LR, O_WARMUP, O_SCHED, O_WD, O_CLIP, O_SEED, O_EVAL, O_VALMAX, O_SAVE, O_RESUME, O_RECOMP, O_QUIET, O_HELP,
    O_CONFIG, O_DIM, O_LAYERS, O_HEADS, O_KVH, O_HIDDEN, O_VOCAB, O_UNTIED, O_DTYPE, O_AINIT, O_RANK, O_ALPHA, O_RSLORA,
    O_TARGETS, O_BF16, O_TASK, O_TFORMAT, O_PROMPT, O_ANSWER, O_PFILE, O_SKIPBAD, O_NOBEST,
    O_COMPAT, O_OLDM, O_OLDA, O_LEVEL, O_DTOK, O_TEMP, O_CEW, O_KDW, O_FALPHA, O_FBETA, O_EMARGIN, O_EP, O_TRANSFER,
    O_TOPK, O_CACHEMB, O_GENMAX, O_GENNR
};

static const struct option common_opts[] = {
    {"data", 1, 0, O_DATA}, {"val", 1, 0, O_VAL}, {"val-frac", 1, 0, O_VAL_FRAC}, {"data-format", 1, 0, O_FORMAT},
    {"out", 1, 0, O_OUT}, {"model", 1, 0, O_MODEL}, {"tokenizer", 1, 0, O_TOK}, {"seq-len", 1, 0, O_SEQ},
    {"steps", 1, 0, O_STEPS}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH}, {"grad-accum", 1, 0, O_ACCUM},
    {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MIN_LR}, {"warmup", 1, 0, O_WARMUP}, {"schedule", 1, 0, O_SCHED},
    {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP}, {"seed", 1, 0, O_SEED}, {"eval-every", 1, 0, O_EVAL},
    {"val-max", 1, 0, O_VALMAX}, {"save-every", 1, 0, O_SAVE}, {"resume", 0, 0, O_RESUME},
    {"recompute", 0, 0, O_RECOMP}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, O_HELP}};
static const struct option pretrain_opts[] = {
    {"config", 1, 0, O_CONFIG}, {"dim", 1, 0, O_DIM}, {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS},
    {"kv-heads", 1, 0, O_KVH}, {"hidden", 1, 0, O_HIDDEN}, {"vocab", 1, 0, O_VOCAB}, {"untied", 0, 0, O_UNTIED},
    {"dtype", 1, 0, O_DTYPE}};
static const struct option finetune_opts[] = {
    {"adapter-init", 1, 0, O_AINIT}, {"rank", 1, 0, O_RANK}, {"alpha", 1, 0, O_ALPHA}, {"rslora", 0, 0, O_RSLORA},
    {"targets", 1, 0, O_TARGETS}, {"bf16", 0, 0, O_BF16}, {"task", 1, 0, O_TASK}, {"format", 1, 0, O_TFORMAT},
    {"prompt", 1, 0, O_PROMPT}, {"answer", 1, 0, O_ANSWER}, {"prompt-file", 1, 0, O_PFILE},
    {"skip-bad", 0, 0, O_SKIPBAD}, {"no-keep-best", 0, 0, O_NOBEST}, {"compat", 1, 0, O_COMPAT},
    {"old-model", 1, 0, O_OLDM}, {"old-adapter", 1, 0, O_OLDA}, {"level", 1, 0, O_LEVEL},
    {"distill-tokens", 1, 0, O_DTOK}, {"temperature", 1, 0, O_TEMP}, {"ce-weight", 1, 0, O_CEW},
    {"kd-weight", 1, 0, O_KDW}, {"focal-alpha", 1, 0, O_FALPHA}, {"focal-beta", 1, 0, O_FBETA},
    {"elodi-margin", 1, 0, O_EMARGIN}, {"elodi-p", 1, 0, O_EP}, {"transfer", 1, 0, O_TRANSFER},
    {"teacher-topk", 1, 0, O_TOPK}, {"teacher-cache-mb", 1, 0, O_CACHEMB}, {"max-tokens", 1, 0, O_GENMAX},
    {"no-repeat-ngram", 1, 0, O_GENNR}};

#define NCOMMON (sizeof common_opts / sizeof common_opts[0])
#define NPRE (sizeof pretrain_opts / sizeof pretrain_opts[0])
#define NFINE (sizeof finetune_opts / sizeof finetune_opts[0])

static void defaults(TrainArgs *a, int finetune) {
    memset(a, 0, sizeof *a);
    a->finetune = finetune;
    a->cmd = finetune ? "finetune" : "pretrain";
    a->format = DATA_FMT_AUTO;
    a->val_frac = 0.05;
    a->out_dtype = DT_F32;
    train_options_default(&a->t, finetune ? TRAIN_LORA : TRAIN_FULL);
    a->t.val_max = 256; /* 64K tokens at --seq-len 256: a steady estimate at a bounded cost */
    if (finetune) {
        /* the paper's recipe (LoRA on all linear layers, no weight decay, accumulation 8,
         * alpha/rank = 2) at a rank and learning rate that move small models */
        a->t.batch = 4;
        a->t.grad_accum = 8;
        a->t.epochs = 3;
        a->t.lr = 1e-3;
        a->t.adamw.weight_decay = 0.0;
        a->rank = 8;
        a->targets = LORA_TARGETS_ALL;
        compat_config_default(&a->cc);
    } else {
        /* llama2.c's recipe for the TinyStories models, at a CPU's batch */
        a->t.batch = 8;
        a->t.grad_accum = 4;
        a->t.epochs = 1;
        a->t.lr = 5e-4;
        a->t.adamw.weight_decay = 0.1;
    }
}

/* Parses a positive number option; prints the error. */
static int parse_pos(const char *opt, const char *s, double *out, int allow_zero) {
    if (cli_parse_float(opt, s, out)) return -1;
    if (!isfinite(*out) || (allow_zero ? *out < 0 : *out <= 0)) {
        fprintf(stderr, "muscle: error: %s '%s': expected a number %s 0\n", opt, s, allow_zero ? ">=" : ">");
        return -1;
    }
    return 0;
}

/* Returns 0 to go on, else the exit code (1 = help printed: exit 0). */
static int parse_args(TrainArgs *a, int argc, char **argv, int *exit_code) {
    struct option opts[NCOMMON + NPRE + NFINE + 1];
    size_t n = 0;
    for (size_t i = 0; i < NCOMMON; i++) opts[n++] = common_opts[i];
    if (a->finetune)
        for (size_t i = 0; i < NFINE; i++) opts[n++] = finetune_opts[i];
    else
        for (size_t i = 0; i < NPRE; i++) opts[n++] = pretrain_opts[i];
    memset(&opts[n], 0, sizeof opts[n]);
    const char *cmd = a->cmd;
    long lv;
    double dv;
    int c;
    optind = 1;
    opterr = 0;
#define INT(name, lo, hi, dst) do { if (cli_parse_int(name, optarg, lo, hi, &lv)) return *exit_code = 2; dst = lv; } while (0)
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: a->data = optarg; break;
        case O_VAL: a->val = optarg; break;
        case O_VAL_FRAC:
            if (cli_parse_float("--val-frac", optarg, &dv)) return *exit_code = 2;
            if (!(dv >= 0 && dv <= 0.5)) {
                fprintf(stderr, "muscle: error: --val-frac '%s': expected a number in 0..0.5\n", optarg);
                return *exit_code = 2;
            }
            a->val_frac = dv;
            a->have_val_frac = 1;
            break;
        case O_FORMAT:
            if (data_format_parse(optarg, &a->format)) return *exit_code = cli_usage_fail(cmd, "--data-format '%s': expected auto, text, lines or jsonl", optarg);
            break;
        case O_OUT: a->out = optarg; break;
        case O_MODEL: a->model = optarg; break;
        case O_TOK: a->tokenizer = optarg; break;
        case O_SEQ: INT("--seq-len", 1, 1 << 20, a->seq_len); break;
        case O_STEPS: INT("--steps", 1, 1L << 40, a->t.steps); a->have_steps = 1; break;
        case O_EPOCHS: if (parse_pos("--epochs", optarg, &a->t.epochs, 0)) return *exit_code = 2; a->have_epochs = 1; break;
        case O_BATCH: INT("--batch", 1, 65536, a->t.batch); break;
        case O_ACCUM: INT("--grad-accum", 1, 65536, a->t.grad_accum); break;
        case O_LR: if (parse_pos("--lr", optarg, &a->t.lr, 0)) return *exit_code = 2; break;
        case O_MIN_LR: if (parse_pos("--min-lr", optarg, &a->t.min_lr, 1)) return *exit_code = 2; a->have_min_lr = 1; break;
        case O_WARMUP: INT("--warmup", 0, 1L << 40, a->t.warmup); break;
        case O_SCHED:
            if (!strcmp(optarg, "cosine")) a->t.schedule = LR_COSINE;
            else if (!strcmp(optarg, "linear")) a->t.schedule = LR_LINEAR;
            else if (!strcmp(optarg, "constant")) a->t.schedule = LR_CONSTANT;
            else return *exit_code = cli_usage_fail(cmd, "--schedule '%s': expected cosine, linear or constant", optarg);
            break;
        case O_WD: if (parse_pos("--weight-decay", optarg, &a->t.adamw.weight_decay, 1)) return *exit_code = 2; break;
        case O_CLIP: if (parse_pos("--clip", optarg, &a->t.clip, 1)) return *exit_code = 2; break;
        case O_SEED: INT("--seed", 0, 0x7fffffffL, a->t.seed); break;
        case O_EVAL: INT("--eval-every", 0, 1L << 40, a->t.eval_every); a->have_eval_every = 1; break;
        case O_VALMAX: INT("--val-max", 0, 1L << 40, a->t.val_max); break;
        case O_SAVE: INT("--save-every", 0, 1L << 40, a->t.save_every); break;
        case O_RESUME: a->t.resume = 1; break;
        case O_RECOMP: a->t.recompute = 1; break;
        case O_QUIET: a->t.quiet = 1; break;
        case O_HELP: fputs(a->finetune ? finetune_help : pretrain_help, stdout); return *exit_code = 0, 1;
        case O_CONFIG: a->config = optarg; break;
        case O_DIM: INT("--dim", 1, 1 << 16, a->dim); break;
        case O_LAYERS: INT("--layers", 1, 1024, a->layers); break;
        case O_HEADS: INT("--heads", 1, 1024, a->heads); break;
        case O_KVH: INT("--kv-heads", 1, 1024, a->kv_heads); break;
        case O_HIDDEN: INT("--hidden", 1, 1 << 20, a->hidden); break;
        case O_VOCAB: INT("--vocab", 1, 1 << 24, a->vocab); break;
        case O_UNTIED: a->untied = 1; break;
        case O_DTYPE:
            a->out_dtype = !strcmp(optarg, "f32") ? DT_F32 : !strcmp(optarg, "bf16") ? DT_BF16 : !strcmp(optarg, "f16") ? DT_F16 : DT_COUNT;
            if (a->out_dtype == DT_COUNT) return *exit_code = cli_usage_fail(cmd, "--dtype '%s': expected f32, bf16 or f16", optarg);
            break;
        case O_AINIT: a->adapter_init = optarg; break;
        case O_RANK: INT("--rank", 1, 65536, a->rank); a->have_rank = 1; break;
        case O_ALPHA: if (parse_pos("--alpha", optarg, &a->alpha, 0)) return *exit_code = 2; a->have_alpha = 1; break;
        case O_RSLORA: a->rslora = 1; break;
        case O_TARGETS:
            if (lora_targets_parse(optarg, &a->targets)) return *exit_code = cli_usage_fail(cmd, "--targets '%s': %s", optarg, err_msg());
            a->have_targets = 1;
            break;
        case O_BF16: a->bf16 = 1; break;
        case O_TASK: a->task = optarg; break;
        case O_TFORMAT: a->task_format = optarg; break;
        case O_PROMPT: a->prompt = optarg; break;
        case O_ANSWER: a->answer = optarg; break;
        case O_PFILE: a->prompt_file = optarg; break;
        case O_SKIPBAD: a->skip_bad = 1; break;
        case O_NOBEST: a->no_keep_best = 1; break;
        case O_COMPAT:
            if (compat_method_parse(optarg, &a->cc.method)) return *exit_code = cli_usage_fail(cmd, "--compat %s", err_msg());
            a->compat = 1;
            break;
        case O_OLDM: a->old_model = optarg; break;
        case O_OLDA: a->old_adapter = optarg; break;
        case O_TRANSFER: a->transfer = optarg; break;
        case O_LEVEL:
            if (compat_level_parse(optarg, &a->cc.level)) return *exit_code = cli_usage_fail(cmd, "--level %s", err_msg());
            break;
        case O_DTOK:
            if (!strcmp(optarg, "all")) a->cc.answer_only = 0;
            else if (!strcmp(optarg, "answer")) a->cc.answer_only = 1;
            else return *exit_code = cli_usage_fail(cmd, "--distill-tokens '%s': expected all or answer", optarg);
            break;
        case O_TEMP: if (parse_pos("--temperature", optarg, &a->cc.temperature, 0)) return *exit_code = 2; break;
        case O_CEW:
            if (parse_pos("--ce-weight", optarg, &a->cc.ce_weight, 1)) return *exit_code = 2;
            if (a->cc.ce_weight > 1) return *exit_code = cli_usage_fail(cmd, "--ce-weight '%s': expected a number in 0..1", optarg);
            break;
        case O_KDW: if (parse_pos("--kd-weight", optarg, &a->cc.kd_weight, 1)) return *exit_code = 2; break;
        case O_FALPHA: if (parse_pos("--focal-alpha", optarg, &a->cc.focal_alpha, 1)) return *exit_code = 2; break;
        case O_FBETA: if (parse_pos("--focal-beta", optarg, &a->cc.focal_beta, 1)) return *exit_code = 2; break;
        case O_EMARGIN: if (parse_pos("--elodi-margin", optarg, &a->cc.elodi_margin, 1)) return *exit_code = 2; break;
        case O_EP: INT("--elodi-p", 1, 2, a->cc.elodi_p); break;
        case O_TOPK: INT("--teacher-topk", 1, 1 << 24, a->cc.topk); break;
        case O_CACHEMB: if (parse_pos("--teacher-cache-mb", optarg, &a->cc.cache_mb, 0)) return *exit_code = 2; break;
        case O_GENMAX: INT("--max-tokens", 1, 1 << 20, a->cc.gen_max_tokens); a->have_gen = 1; break;
        case O_GENNR: INT("--no-repeat-ngram", 0, 64, a->cc.gen_no_repeat_ngram); a->have_gen = 1; break;
        case ':': return *exit_code = cli_usage_fail(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return *exit_code = cli_usage_fail(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
#undef INT
    if (optind != argc) return *exit_code = cli_usage_fail(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->task && a->data) return *exit_code = cli_usage_fail(cmd, "give --data or --task, not both");
    if (!a->data && !a->task) return *exit_code = cli_usage_fail(cmd, a->finetune ? "--data FILE or --task FILE is required" : "--data FILE is required");
    if (!a->task && (a->task_format || a->prompt || a->answer || a->prompt_file || a->skip_bad || a->no_keep_best))
        return *exit_code = cli_usage_fail(cmd, "--format, --prompt, --answer, --prompt-file, --skip-bad and --no-keep-best go with --task");
    if (!a->out) return *exit_code = cli_usage_fail(cmd, "--out DIR is required");
    if (a->have_steps && a->have_epochs) return *exit_code = cli_usage_fail(cmd, "give --steps or --epochs, not both");
    if (a->val && a->have_val_frac) return *exit_code = cli_usage_fail(cmd, "give --val or --val-frac, not both");
    if (a->finetune) {
        if (!a->model) return *exit_code = cli_usage_fail(cmd, "--model is required");
        if (a->adapter_init && (a->have_rank || a->have_alpha || a->have_targets || a->rslora))
            return *exit_code = cli_usage_fail(cmd, "--adapter-init brings its own rank, alpha and targets: drop --rank, --alpha, --targets and --rslora");
        if (!a->have_alpha) a->alpha = 2.0 * (double)a->rank;
        if (a->compat) {
            if (!a->task) return *exit_code = cli_usage_fail(cmd, "--compat trains on a task: give --task");
            if (!a->adapter_init) return *exit_code = cli_usage_fail(cmd, "--compat needs --adapter-init A2, the new task model's adapter (the student starts from it)");
            if (!a->old_model || !a->old_adapter) return *exit_code = cli_usage_fail(cmd, "--compat needs the old task model: --old-model M1 --old-adapter A1");
            if (a->have_gen && a->cc.level != COMPAT_LEVEL_SEQUENCE)
                return *exit_code = cli_usage_fail(cmd, "--max-tokens and --no-repeat-ngram go with --level sequence");
        } else if (a->old_model || a->old_adapter || a->transfer || a->have_gen) {
            return *exit_code = cli_usage_fail(cmd, "--old-model, --old-adapter, --transfer, --max-tokens and --no-repeat-ngram go with --compat");
        }
    } else {
        int shape = a->dim || a->layers || a->heads || a->kv_heads || a->hidden || a->vocab || a->untied;
        if ((a->model != NULL) + (a->config != NULL) + (shape != 0) != 1)
            return *exit_code = cli_usage_fail(cmd, "give exactly one of --model M, --config CONFIG.json, or a shape (--dim --layers --heads --hidden)");
        if (shape && (!a->dim || !a->layers || !a->heads || !a->hidden))
            return *exit_code = cli_usage_fail(cmd, "a new model needs --dim, --layers, --heads and --hidden");
        if (!a->model && !a->tokenizer) return *exit_code = cli_usage_fail(cmd, "a new model needs --tokenizer");
        if (!a->have_min_lr) a->t.min_lr = a->t.lr / 10;
    }
    a->t.out_dir = a->out;
    if (dist_rank() > 0) a->t.quiet = 1; /* data parallel: rank 0 speaks and writes for the job */
    return 0;
}

/* ------------------------------------------------------------------------- */
/* output                                                                     */

/* Copies the tokenizer file into DIR under its usual name. */
static int copy_tokenizer(const Tokenizer *t, const char *found, const char *dir) {
    const char *kind = tok_kind(t);
    const char *name = !strcmp(kind, "sentencepiece") ? "tokenizer.model" : !strcmp(kind, "tokenizer.json") ? "tokenizer.json" : "tokenizer.bin";
    size_t n;
    char *bytes = file_read_all(found, &n, 0);
    char *dst = file_join(dir, name);
    int rc = (bytes && dst) ? file_write_all_atomic(dst, bytes, n) : -1;
    free(bytes);
    free(dst);
    return rc;
}

static void json_num_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

/* The run's record: command, inputs, every setting, results (deterministic content). */
static char *training_json(const TrainArgs *a, const Trainer *t, int formatted) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", a->cmd);
    if (a->model) cJSON_AddStringToObject(j, "model", a->model);
    cJSON_AddStringToObject(j, a->task ? "task" : "data", a->task ? a->task : a->data);
    if (a->val) cJSON_AddStringToObject(j, "val", a->val);
    cJSON_AddNumberToObject(j, "train_examples", (double)t->data->n[DATA_TRAIN]);
    cJSON_AddNumberToObject(j, "val_examples", (double)t->data->n[DATA_VAL]);
    cJSON_AddNumberToObject(j, "train_tokens", (double)t->data->n_tokens[DATA_TRAIN]);
    cJSON_AddNumberToObject(j, "val_tokens", (double)t->data->n_tokens[DATA_VAL]);
    cJSON *s = cJSON_AddObjectToObject(j, "settings");
    for (int i = 0; i < t->settings.n; i++) cJSON_AddStringToObject(s, t->settings.v[i].key, t->settings.v[i].value);
    cJSON_AddNumberToObject(j, "steps", (double)t->total_steps);
    json_num_or_null(j, "start_val_loss", t->start_val_loss);
    json_num_or_null(j, "val_loss", t->val_loss);
    char *text = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static int write_training_json(const TrainArgs *a, const Trainer *t) {
    char *text = training_json(a, t, 1);
    char *path = file_join(a->out, "training.json");
    int rc = text && path ? 0 : err_set("out of memory");
    if (!rc) {
        size_t n = strlen(text);
        text[n] = '\n'; /* cJSON's buffer holds the NUL here: write it as the final newline */
        rc = file_write_all_atomic(path, text, n + 1);
    }
    free(text);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* the commands                                                               */

static void summary(const TrainArgs *a, const Trainer *t, uint64_t trainable) {
    if (a->t.quiet) return;
    const TrainData *d = t->data;
    fprintf(stderr, "muscle %s: %llu trainable parameters; data: %zu documents, %zu + %zu tokens = %ld training + %ld held-out windows of %d; "
                    "%ld steps of %d x %d sequences, lr %g, warm-up %ld, %d threads%s\n",
            a->cmd, (unsigned long long)trainable, d->n_docs, d->n_tokens[0], d->n_tokens[1], d->n[0], d->n[1], d->seq_len,
            t->total_steps, a->t.batch, a->t.grad_accum, a->t.lr, t->warmup, cpu_threads(), a->t.resume ? ", resuming" : "");
}

static int finish(const TrainArgs *a, Trainer *t, int rc) {
    if (rc > 0) {
        fprintf(stderr, "muscle: stopped by %s after step %ld of %ld: checkpoint saved in %s/checkpoint; continue with --resume\n",
                rc == 2 ? "SIGINT" : rc == 15 ? "SIGTERM" : "a signal", t->adam.step, t->total_steps, a->out);
        return 128 + rc;
    }
    return rc == 0 ? 0 : cli_fail();
}

static int run_pretrain(TrainArgs *a) {
    Model m;
    Tokenizer *tok = NULL;
    char *found = NULL;
    ModelLoadOptions lo = {KW_F32, 1};
    if (a->model) {
        if (model_load(&m, a->model, &lo) != 0) return cli_fail();
    } else {
        ModelConfig c;
        memset(&c, 0, sizeof c);
        Tokenizer *t0 = tok_load(a->tokenizer);
        if (!t0) return cli_fail();
        if (a->config) {
            char *dir = file_is_dir(a->config) ? strdup(a->config) : file_dirname(a->config);
            const char *base = strrchr(a->config, '/');
            base = base ? base + 1 : a->config;
            int rc = !file_is_dir(a->config) && strcmp(base, "config.json")
                         ? err_set("--config %s: expected a file named config.json, or a folder holding one", a->config)
                         : hf_config_read(&c, dir);
            free(dir);
            if (rc) {
                tok_free(t0);
                return cli_fail();
            }
        } else {
            c.dim = (int)a->dim;
            c.n_layers = (int)a->layers;
            c.n_heads = (int)a->heads;
            c.n_kv_heads = (int)(a->kv_heads ? a->kv_heads : a->heads);
            c.hidden_dim = (int)a->hidden;
            c.vocab_size = (int)(a->vocab ? a->vocab : tok_vocab_size(t0));
            c.seq_len = (int)(a->seq_len ? a->seq_len : 256);
            c.rope_theta = 10000.0f;
            c.norm_eps = 1e-5f;
            c.tied = !a->untied;
            c.bos_id = tok_bos_id(t0) >= 0 ? tok_bos_id(t0) : 1;
            c.eos_id = tok_eos_id(t0) >= 0 ? tok_eos_id(t0) : 2;
            if (c.dim % c.n_heads) {
                tok_free(t0);
                return cli_usage_fail(a->cmd, "--dim %d is not a multiple of --heads %d", c.dim, c.n_heads);
            }
            if ((c.dim / c.n_heads) % 2) {
                tok_free(t0);
                return cli_usage_fail(a->cmd, "--dim / --heads = %d: the head size must be even (rotary pairs)", c.dim / c.n_heads);
            }
        }
        tok_free(t0);
        if (model_init_random(&m, &c, &lo, a->t.seed) != 0) return cli_fail();
    }
    tok = model_tokenizer_load_ex(&m, a->tokenizer, &found);
    if (!tok) {
        model_free(&m);
        return cli_fail();
    }
    TextDataOptions dopt;
    text_data_options_default(&dopt);
    dopt.format = a->format;
    dopt.val_path = a->val;
    dopt.val_frac = a->val ? 0 : a->val_frac;
    dopt.seq_len = (int)(a->seq_len ? a->seq_len : (m.cfg.seq_len < 256 ? m.cfg.seq_len : 256));
    TrainData d;
    Trainer t;
    int rc = data_text_open(&d, a->data, &dopt, tok);
    if (rc == 0) {
        rc = trainer_init(&t, &m, NULL, &d, &a->t, NULL);
        if (rc == 0) {
            if (!a->have_eval_every) t.opt.eval_every = (t.total_steps + 9) / 10;
            summary(a, &t, model_param_count(&m));
            rc = trainer_run(&t);
            if (rc == 0 && dist_rank() == 0) rc = model_save_hf(&m, a->out, a->out_dtype);
            if (rc == 0 && dist_rank() == 0 && found) rc = copy_tokenizer(tok, found, a->out);
            if (rc == 0 && dist_rank() == 0) rc = write_training_json(a, &t);
            if (rc == 0 && !a->t.quiet)
                fprintf(stderr, "muscle pretrain: held-out loss %.4f -> %.4f; %ld steps in %.1f s; model written to %s\n", t.start_val_loss,
                        t.val_loss, t.steps_this_run, t.train_seconds, a->out);
            rc = finish(a, &t, rc);
            trainer_free(&t);
        } else {
            rc = cli_fail();
        }
        data_free(&d);
    } else {
        rc = cli_fail();
    }
    free(found);
    model_tokenizer_free(&m, tok);
    model_free(&m);
    return rc;
}

/* ---- finetune --task: labelled data, keep the best epoch ---- */

typedef struct {
    TrainArgs *a;
    Model *m;
    LoraAdapter *ad;
    double best;          /* best held-out loss so far (of OUT/best) */
    long best_step;
    char *best_dir;
} KeepBest;

/* After each validation: when the held-out loss improved, the adapter goes to OUT/best. */
static int keep_best_hook(Trainer *t, void *ctx) {
    KeepBest *kb = ctx;
    if (!(t->val_loss < kb->best)) return 0;
    kb->best = t->val_loss;
    kb->best_step = t->adam.step;
    char v[64], st[32];
    snprintf(v, sizeof v, "%.17g", t->val_loss);
    snprintf(st, sizeof st, "%ld", t->adam.step);
    LoraMeta meta[2] = {{"muscle.val_loss", v}, {"muscle.step", st}};
    if (dist_rank() != 0) return 0; /* only rank 0 writes files */
    if (lora_save_peft(kb->ad, &kb->m->cfg, kb->best_dir, kb->a->model, meta, 2) != 0) return -1; /* err_set by lora_save_peft: trainer_run returns -1 and the command prints it once */
    return 0;
}

/* Task files -> TrainData (answer-token masks). */
static int open_task_data(TrainArgs *a, const Model *m, const Tokenizer *tok, TrainData *d) {
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    lo.skip_bad = a->skip_bad;
    if (a->task_format && task_format_from_name(a->task_format, &lo.format) != 0) return -1;
    TaskSet tr, va;
    memset(&va, 0, sizeof va);
    if (task_set_load(&tr, a->task, &lo) != 0) return -1;
    if (a->val && task_set_load(&va, a->val, &lo) != 0) { task_set_free(&tr); return -1; }
    TaskPrompt p;
    memset(&p, 0, sizeof p);
    int rc = task_prompt_setup(&p, &tr, a->prompt_file, a->prompt, a->answer, NULL, 0);
    TaskDataOptions o;
    task_data_options_default(&o);
    o.max_len = (int)(a->seq_len ? a->seq_len + 1 : m->cfg.seq_len);
    if (a->have_val_frac) o.val_frac = a->val_frac;
    o.seed = a->t.seed;
    if (!rc) rc = data_task_open(d, &tr, a->val ? &va : NULL, &p, tok, &o);
    if (!rc && !a->t.quiet)
        fprintf(stderr, "muscle finetune: %s: %ld training and %ld held-out examples of up to %d tokens%s\n", a->task,
                d->n[DATA_TRAIN], d->n[DATA_VAL], d->seq_len + 1, o.n_unlabeled ? " (unlabelled instances skipped)" : "");
    task_prompt_free(&p);
    task_set_free(&tr);
    if (a->val) task_set_free(&va);
    return rc;
}

/* ---- finetune --compat: the teachers, the data, the step hook ---- */

typedef struct {
    Model m1;
    LoraAdapter a1;
    int have_m1, have_a1;
    CompatTrainer *ct;
    TaskSet tr, va, tf;
    TaskPrompt p;
} CompatRun;

static void compat_run_free(CompatRun *c) {
    compat_trainer_free(c->ct);
    if (c->have_a1) lora_free(&c->a1);
    if (c->have_m1) model_free(&c->m1);
    task_prompt_free(&c->p);
    task_set_free(&c->tr);
    task_set_free(&c->va);
    task_set_free(&c->tf);
    memset(c, 0, sizeof *c);
}

static int open_compat_data(TrainArgs *a, const Model *m, const Tokenizer *tok, const LoraAdapter *a2, CompatRun *c, TrainData *d) {
    ModelLoadOptions lo = {a->bf16 ? KW_BF16 : KW_F32, 0};
    if (model_load(&c->m1, a->old_model, &lo) != 0) return err_prefix("--old-model %s", a->old_model);
    c->have_m1 = 1;
    if (lora_load_peft(&c->a1, &c->m1.cfg, a->old_adapter) != 0) return err_prefix("--old-adapter %s", a->old_adapter);
    c->have_a1 = 1;
    TaskLoadOptions tlo;
    task_load_options_default(&tlo);
    tlo.skip_bad = a->skip_bad;
    if (a->task_format && task_format_from_name(a->task_format, &tlo.format) != 0) return -1;
    if (task_set_load(&c->tr, a->task, &tlo) != 0) return -1;
    if (a->val && task_set_load(&c->va, a->val, &tlo) != 0) return -1;
    if (a->transfer && task_set_load(&c->tf, a->transfer, &tlo) != 0) return -1;
    if (task_prompt_setup(&c->p, &c->tr, a->prompt_file, a->prompt, a->answer, NULL, 0) != 0) return -1;
    CompatSetup cs;
    memset(&cs, 0, sizeof cs);
    cs.cfg = a->cc;
    cs.old_model = &c->m1;
    cs.old_adapter = &c->a1;
    cs.model = m;
    cs.new_adapter = a2;
    cs.train = &c->tr;
    cs.val = a->val ? &c->va : NULL;
    cs.transfer = a->transfer ? &c->tf : NULL;
    cs.prompt = &c->p;
    cs.tok = tok;
    cs.max_len = (int)(a->seq_len ? a->seq_len + 1 : m->cfg.seq_len);
    cs.val_frac = a->have_val_frac ? a->val_frac : 0.2;
    cs.seed = a->t.seed;
    cs.batch = a->t.batch;
    cs.quiet = a->t.quiet;
    if (compat_trainer_init(&c->ct, &cs, d) != 0) return -1;
    const CompatStats *st = compat_trainer_stats(c->ct);
    if (!a->t.quiet)
        fprintf(stderr, "muscle finetune --compat %s (%s level, %s tokens, T %g): %ld training, %ld transfer and %ld held-out examples; teachers computed in %.1f s\n",
                compat_method_name(a->cc.method), compat_level_name(a->cc.level), a->cc.answer_only ? "answer" : "all",
                a->cc.temperature, st->n_train, st->n_transfer, st->n_val, st->teacher_seconds);
    return 0;
}

static int run_finetune(TrainArgs *a) {
    Model m;
    ModelLoadOptions lo = {a->bf16 ? KW_BF16 : KW_F32, 0};
    if (model_load(&m, a->model, &lo) != 0) return cli_fail();
    Tokenizer *tok = model_tokenizer_load(&m, a->tokenizer);
    if (!tok) {
        model_free(&m);
        return cli_fail();
    }
    LoraAdapter ad;
    int rc;
    if (a->adapter_init) {
        rc = lora_load_peft(&ad, &m.cfg, a->adapter_init);
    } else {
        rc = lora_init(&ad, &m.cfg, (int)a->rank, (float)a->alpha, a->rslora, a->targets);
        if (rc == 0) lora_reset_peft(&ad, a->t.seed);
    }
    if (rc != 0) {
        model_tokenizer_free(&m, tok);
        model_free(&m);
        return cli_fail();
    }
    TextDataOptions dopt;
    text_data_options_default(&dopt);
    dopt.format = a->format;
    dopt.val_path = a->val;
    dopt.val_frac = a->val ? 0 : a->val_frac;
    dopt.seq_len = (int)(a->seq_len ? a->seq_len : (m.cfg.seq_len < 256 ? m.cfg.seq_len : 256));
    TrainData d;
    Trainer t;
    KeepBest kb = {a, &m, &ad, INFINITY, -1, NULL};
    CompatRun cr;
    memset(&cr, 0, sizeof cr);
    CkptSettings extra = {0};
    char *cjs = NULL;
    if (a->compat) {
        rc = open_compat_data(a, &m, tok, &ad, &cr, &d);
        cjs = rc == 0 ? compat_config_json(&a->cc) : NULL;
        if (rc == 0)
            rc = ckpt_settings_set(&extra, "compat", "%s/%s/%s/T%g/ce%g/kd%g", compat_method_name(a->cc.method),
                                   compat_level_name(a->cc.level), a->cc.answer_only ? "answer" : "all", a->cc.temperature,
                                   a->cc.ce_weight, a->cc.kd_weight);
        if (rc == 0 && a->cc.level == COMPAT_LEVEL_SEQUENCE) /* the decoding of the outputs */
            rc = ckpt_settings_set(&extra, "compat_decoding", "max%d/nr%d", a->cc.gen_max_tokens, a->cc.gen_no_repeat_ngram);
    } else {
        rc = a->task ? open_task_data(a, &m, tok, &d) : data_text_open(&d, a->data, &dopt, tok);
    }
    if (rc == 0) {
        rc = trainer_init(&t, &m, &ad, &d, &a->t, a->compat ? &extra : NULL);
        if (rc == 0 && a->compat && compat_trainer_attach(cr.ct, &t) != 0) {
            trainer_free(&t);
            rc = -1;
        }
        if (rc == 0) {
            if (!a->have_eval_every) t.opt.eval_every = (t.total_steps + 9) / 10;
            if (a->task && !a->no_keep_best && d.n[DATA_VAL]) {
                /* validation at the end of every epoch; the best adapter is kept in OUT/best */
                long per_epoch = (d.n[DATA_TRAIN] + (long)a->t.batch * a->t.grad_accum - 1) / ((long)a->t.batch * a->t.grad_accum);
                if (!a->have_eval_every) t.opt.eval_every = per_epoch > 0 ? per_epoch : 1;
                kb.best_dir = file_join(a->out, "best");
                if (a->t.resume) { /* the best so far, from a previous part of this run */
                    char *v = lora_peft_meta(kb.best_dir, "muscle.val_loss");
                    if (v) kb.best = strtod(v, NULL);
                    free(v);
                }
                t.on_eval = keep_best_hook;
                t.on_eval_ctx = &kb;
            }
            summary(a, &t, ad.n_floats);
            rc = trainer_run(&t);
            if (rc == 0 && kb.best_dir && kb.best < INFINITY && dist_rank() == 0) {
                /* the final adapter is the best epoch's */
                LoraAdapter best;
                rc = lora_load_peft(&best, &m.cfg, kb.best_dir);
                if (rc == 0) {
                    memcpy(ad.data, best.data, ad.n_floats * sizeof(float));
                    lora_free(&best);
                    if (!a->t.quiet && !isnan(kb.best))
                        fprintf(stderr, "muscle finetune: keeping the adapter with the best held-out loss %.4f\n", kb.best);
                } else {
                    rc = cli_fail();
                }
            }
            if (rc == 0 && dist_rank() == 0) {
                char *js = training_json(a, &t, 0);
                LoraMeta meta[2] = {{"muscle.training", js ? js : "{}"}, {"muscle.compat", cjs ? cjs : "{}"}};
                rc = lora_save_peft(&ad, &m.cfg, a->out, a->model, meta, a->compat ? 2 : 1);
                free(js);
            }
            if (rc == 0 && a->compat && !a->t.quiet) {
                const CompatStats *st = compat_trainer_stats(cr.ct);
                fprintf(stderr, "muscle finetune --compat: the mask chose M1 on %.1f%% of %ld distilled %s; the student's answer was right on %.1f%% of %ld answer %s\n",
                        st->distilled ? 100.0 * st->masked / st->distilled : 0.0, st->distilled,
                        a->cc.level != COMPAT_LEVEL_TOKEN ? "instances" : "positions",
                        st->answers ? 100.0 * st->answers_correct / st->answers : 0.0, st->answers,
                        a->cc.level == COMPAT_LEVEL_CHOICE ? "instances" : "tokens");
            }
            if (rc == 0 && dist_rank() == 0) rc = write_training_json(a, &t);
            if (rc == 0 && !a->t.quiet)
                fprintf(stderr, "muscle finetune: held-out loss %.4f -> %.4f; %ld steps in %.1f s; adapter written to %s\n", t.start_val_loss,
                        t.val_loss, t.steps_this_run, t.train_seconds, a->out);
            rc = finish(a, &t, rc);
            trainer_free(&t);
        } else {
            rc = cli_fail();
        }
        data_free(&d);
    } else {
        rc = cli_fail();
    }
    compat_run_free(&cr);
    ckpt_settings_free(&extra);
    free(cjs);
    free(kb.best_dir);
    lora_free(&ad);
    model_tokenizer_free(&m, tok);
    model_free(&m);
    return rc;
}

int cmd_pretrain(int argc, char **argv) {
    TrainArgs a;
    defaults(&a, 0);
    int code = 0;
    if (parse_args(&a, argc, argv, &code)) return code;
    return run_pretrain(&a);
}

int cmd_finetune(int argc, char **argv) {
    TrainArgs a;
    defaults(&a, 1);
    int code = 0;
    if (parse_args(&a, argc, argv, &code)) return code;
    return run_finetune(&a);
}
