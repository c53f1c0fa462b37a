// The demo's words: captions (plain template), high-level instructions and
// Q-Instruct-style low-level instructions (v1 template) as LLaVA records, and
// Q-Bench-style evaluation items (A1 multiple choice, A3 scores).
//
// Balance is by construction, not by luck: every yes/no answer and every
// correct option's position comes from a DemoBalance, which deals each value
// once per block in a seeded order, so "Yes" and "No" (and A, B, C, D) are
// equally frequent within one per block in every file.
#include <stdio.h>   // snprintf
#include <string.h>  // strcmp

#include "demo/conversations.h"

const char *const DEMO_MCQ_SUFFIX = "Answer with the option's letter from the given choices directly.";
const char *const DEMO_RATE_QUESTION = "Rate the quality of the image.";


// ---- balance

void demo_balance_init(DemoBalance *b, uint64_t seed, uint64_t stream) {
    *b = (DemoBalance){0};
    rng_init(&b->rng, seed, stream);
}

int demo_balance_next(DemoBalance *b, int k) {
    int slot = k == 2 ? 0 : k == 3 ? 1 : 2;  // yes/no, 3 options, 4 options
    if (b->used[slot] == 0 || b->used[slot] >= k) {
        for (int i = 0; i < k; i++) b->deck[slot][i] = i;
        for (int i = k - 1; i > 0; i--) {
            int j = (int)rng_below(&b->rng, (uint64_t)i + 1), t = b->deck[slot][i];
            b->deck[slot][i] = b->deck[slot][j], b->deck[slot][j] = t;
        }
        b->used[slot] = 0;
    }
    return b->deck[slot][b->used[slot]++];
}

// ---- wording

static const char *const SHAPE_TITLE[DEMO_N_SHAPES] = {"Circle", "Square", "Triangle", "Cross"};
static const char *const COLOUR_TITLE[DEMO_N_COLOURS] = {"Red", "Green", "Blue", "Yellow", "Purple"};
static const char *const BACKGROUND_TITLE[DEMO_N_BACKGROUNDS] = {"Gray", "Black", "White"};

// "What is the main distortion" answers, by DemoDistortion
static const char *const DISTORTION_TITLE[DEMO_N_DISTORTIONS] = {
    "None", "Blur", "Noise", "JPEG compression", "Overexposure", "Underexposure", "Low contrast"};

// The "how" question of each distortion and its answer by level.
static const char *const HOW_QUESTION[DEMO_N_DISTORTIONS] = {
    NULL,
    "How is the sharpness of this image?",
    "How noisy is this image?",
    "How strong are the compression artifacts in this image?",
    "How is the exposure of this image?",
    "How is the exposure of this image?",
    "How is the contrast of this image?"};
static const char *const HOW_ANSWER[DEMO_N_DISTORTIONS][DEMO_N_LEVELS] = {
    {NULL, NULL, NULL, NULL},
    {"Sharp", "Slightly blurry", "Blurry", "Very blurry"},
    {"Clean", "Slightly noisy", "Noisy", "Very noisy"},
    {"None", "Slight", "Obvious", "Severe"},
    {"Normal", "Slightly overexposed", "Overexposed", "Heavily overexposed"},
    {"Normal", "Slightly underexposed", "Underexposed", "Heavily underexposed"},
    {"Normal", "Slightly low", "Low", "Very low"}};

// Yes/no about one distortion (yes when the image has it), and about none.
static const char *const YESNO_QUESTION[DEMO_N_DISTORTIONS] = {
    "Is this image free of distortions?",
    "Is this image blurry?",
    "Is this image noisy?",
    "Does this image show compression artifacts?",
    "Is this image overexposed?",
    "Is this image underexposed?",
    "Is the contrast of this image low?"};

// Pairs that look alike at 32 pixels, never used as each other's "no".
static bool confusable(int a, int b) {
    if (a > b) { int t = a; a = b; b = t; }
    return (a == DIST_BLUR && b == DIST_JPEG) || (a == DIST_BRIGHT && b == DIST_CONTRAST) ||
           (a == DIST_DARK && b == DIST_CONTRAST);
}

static const char *const PATHWAY_SENTENCE[DEMO_N_DISTORTIONS][DEMO_N_LEVELS] = {
    {"The image is sharp and clean, with no obvious distortion.", NULL, NULL, NULL},
    {NULL, "The image is slightly blurred.", "The image is blurred and the edges are soft.",
     "The image is heavily blurred and its details are lost."},
    {NULL, "There is slight noise in the image.", "The image is noisy.", "The image is covered in heavy noise."},
    {NULL, "There are slight compression artifacts.", "There are obvious blocky compression artifacts.",
     "Severe compression artifacts destroy the details."},
    {NULL, "The image is slightly overexposed.", "The image is overexposed and too bright.",
     "The image is heavily overexposed and washed out."},
    {NULL, "The image is slightly underexposed.", "The image is underexposed and too dark.",
     "The image is heavily underexposed and almost black."},
    {NULL, "The contrast is slightly low.", "The contrast is low and the colours are dull.",
     "The contrast is very low and the image looks faded."}};

static const char *const PATHWAY_QUESTION[] = {
    "Describe the quality of this image.",
    "Evaluate the quality of this image, and give your reasons.",
    "How would you describe the quality of this image?"};

static const char *const TEXT_ONLY[][2] = {
    {"How many sides does a triangle have?", "Three."},
    {"How many sides does a square have?", "Four."},
    {"How many corners does a circle have?", "None."},
    {"What colour do you get by mixing blue and yellow?", "Green."},
    {"What colour do you get by mixing red and blue?", "Purple."},
    {"What colour is the sky on a clear day?", "Blue."},
    {"What colour is a ripe banana?", "Yellow."},
    {"What colour is fresh grass?", "Green."},
    {"Name a shape with no corners.", "A circle."},
    {"Is a square round?", "No."},
    {"Is a circle round?", "Yes."},
    {"What does a blurry photo look like?", "Its edges are soft and its details are lost."},
    {"What makes a photo too dark?", "Too little light, or underexposure."},
    {"What do JPEG compression artifacts look like?", "Blocks and rough edges."},
};
#define N_TEXT_ONLY (sizeof TEXT_ONLY / sizeof *TEXT_ONLY)

static const char LETTERS[] = "ABCD";

// ---- building blocks

static json_t *turn(const char *from, const char *value) {
    return json_pack("{s:s, s:s}", "from", from, "value", value);
}

// Appends a human/gpt pair; the first human turn of an image record gets "<image>\n".
static void add_pair(json_t *convs, const char *question, const char *answer, bool image) {
    char q[1024];
    snprintf(q, sizeof q, "%s%s", image ? "<image>\n" : "", question);
    json_array_append_new(convs, turn("human", q));
    json_array_append_new(convs, turn("gpt", answer));
}

static json_t *record(const char *id, const char *image, json_t *convs) {
    json_t *r = json_object();
    json_object_set_new(r, "id", json_string(id));
    if (image) json_object_set_new(r, "image", json_string(image));
    json_object_set_new(r, "conversations", convs);
    return r;
}

// A multiple-choice question: the correct answer at a balanced position (when
// shown: a question asked openly does not use up the deck), the other options
// drawn from pool (entries equal to the answer or NULL skipped).
static void mcq_make(DemoMcq *m, DemoBalance *b, const char *question, const char *answer,
                     const char *const *pool, int pool_n, int n_options, bool shown) {
    const char *others[16];
    int n_others = 0;
    for (int i = 0; i < pool_n && n_others < 16; i++)
        if (pool[i] && strcmp(pool[i], answer) != 0) others[n_others++] = pool[i];
    if (n_options > n_others + 1) n_options = n_others + 1;
    for (int i = n_others - 1; i > 0; i--) {  // a seeded pick of the distractors
        int j = (int)rng_below(&b->rng, (uint64_t)i + 1);
        const char *t = others[i];
        others[i] = others[j], others[j] = t;
    }
    m->question = question;
    m->n = n_options;
    m->correct = shown ? demo_balance_next(b, n_options) : (int)rng_below(&b->rng, (uint64_t)n_options);
    for (int i = 0, o = 0; i < n_options; i++) m->options[i] = i == m->correct ? answer : others[o++];
}

static void mcq_yes_no(DemoMcq *m, const char *question, bool yes) {
    m->question = question;
    m->n = 2;
    m->options[0] = "Yes", m->options[1] = "No";
    m->correct = yes ? 0 : 1;
}

// As Q-Instruct's LLaVA-1.5 evaluation asks (eval_scripts/llava_v1.5/eval_qbench_mcq.py),
// so the demo model is trained on the prompt it is evaluated with.
void demo_mcq_prompt(const DemoMcq *m, char *buf, size_t size) {
    int at = snprintf(buf, size, "%s\n%s\n", m->question, DEMO_MCQ_SUFFIX);
    for (int i = 0; i < m->n && at > 0 && (size_t)at < size; i++)
        at += snprintf(buf + at, size - at, "%c. %s\n", LETTERS[i], m->options[i]);
}

static void add_mcq_pair(json_t *convs, const DemoMcq *m, bool image) {
    char prompt[1024], answer[4] = {LETTERS[m->correct], '.', 0};
    demo_mcq_prompt(m, prompt, sizeof prompt);
    add_pair(convs, prompt, answer, image);
}

// ---- high level

// ASK_YES_NO_CHOICE: the yes/no question as options A. Yes / B. No, as Q-Bench asks it
typedef enum { ASK_OPEN, ASK_YES_NO, ASK_CHOICE, ASK_YES_NO_CHOICE, ASK_FORMS } AskForm;

// A question about the shape (about = 0) or its colour (1) in the given form.
static void high_question(const DemoScene *s, int about, AskForm form, DemoBalance *b, json_t *convs, bool image) {
    char q[256], a[256];
    const char *const *titles = about == 0 ? SHAPE_TITLE : COLOUR_TITLE;
    int n = about == 0 ? DEMO_N_SHAPES : DEMO_N_COLOURS, truth = about == 0 ? s->shape : s->colour;
    const char *open_q = about == 0 ? "What shape is in the image?" : "What colour is the shape?";
    if (form == ASK_OPEN) {
        if (about == 0) snprintf(a, sizeof a, "A %s.", demo_shape_name(s->shape));
        else snprintf(a, sizeof a, "%s.", COLOUR_TITLE[s->colour]);
        add_pair(convs, open_q, a, image);
    } else if (form == ASK_YES_NO || form == ASK_YES_NO_CHOICE) {
        bool yes = demo_balance_next(b, 2) == 0;
        int asked = truth;
        if (!yes) asked = (truth + 1 + (int)rng_below(&b->rng, (uint64_t)n - 1)) % n;
        if (about == 0) snprintf(q, sizeof q, "Is the shape a %s?", demo_shape_name(asked));
        else snprintf(q, sizeof q, "Is the shape %s?", demo_colour_name(asked));
        if (form == ASK_YES_NO_CHOICE) {
            DemoMcq m;
            mcq_yes_no(&m, q, yes);
            add_mcq_pair(convs, &m, image);
        } else {
            add_pair(convs, q, yes ? "Yes." : "No.", image);
        }
    } else {
        DemoMcq m;
        mcq_make(&m, b, open_q, titles[truth], titles, n, 4, true);
        add_mcq_pair(convs, &m, image);
    }
}

// How a caption found on the web might mention a photo's condition ("a blurry
// photo of ..."), by distortion and level; pristine images get none. Like
// CLIP's web captions, this gives the vision tower low-level features in
// pretraining, which the base model never learns to rate or discuss: that is
// what the Q-Instruct stages teach.
static const char *const CAPTION_CONDITION[DEMO_N_DISTORTIONS][DEMO_N_LEVELS] = {
    {NULL, NULL, NULL, NULL},
    {NULL, "a slightly blurry photo of ", "a blurry photo of ", "a very blurry photo of "},
    {NULL, "a slightly grainy photo of ", "a grainy photo of ", "a very grainy photo of "},
    {NULL, "a slightly compressed photo of ", "a compressed photo of ", "a heavily compressed photo of "},
    {NULL, "a slightly bright photo of ", "a bright photo of ", "a washed-out photo of "},
    {NULL, "a slightly dim photo of ", "a dim photo of ", "a very dim photo of "},
    {NULL, "a slightly faded photo of ", "a faded photo of ", "a very faded photo of "}};

json_t *demo_caption_record(const DemoScene *s, const char *id, const char *image) {
    char caption[256];
    const char *condition = CAPTION_CONDITION[s->distortion][s->level];
    snprintf(caption, sizeof caption, "%sa %s %s on a %s background", condition ? condition : "",
             demo_colour_name(s->colour), demo_shape_name(s->shape), demo_background_name(s->background));
    json_t *convs = json_array();
    // the plain template keeps only the caption; the question is the bare placeholder, as in the 558K file
    json_array_append_new(convs, turn("human", "<image>"));
    json_array_append_new(convs, turn("gpt", caption));
    return record(id, image, convs);
}

json_t *demo_high_record(const DemoScene *s, const char *id, const char *image, DemoBalance *b) {
    json_t *convs = json_array();
    int first = (int)rng_below(&b->rng, 2);
    for (int k = 0; k < 2; k++)
        high_question(s, k == 0 ? first : 1 - first, (AskForm)rng_below(&b->rng, ASK_FORMS), b, convs, k == 0);
    if (rng_below(&b->rng, 4) == 0) {
        char a[64];
        snprintf(a, sizeof a, "%s.", BACKGROUND_TITLE[s->background]);
        add_pair(convs, "What colour is the background?", a, false);
    }
    return record(id, image, convs);
}

json_t *demo_text_only_record(const char *id, DemoBalance *b) {
    int k = (int)rng_below(&b->rng, N_TEXT_ONLY);
    json_t *convs = json_array();
    add_pair(convs, TEXT_ONLY[k][0], TEXT_ONLY[k][1], false);
    return record(id, NULL, convs);
}

// ---- low level

// A how-question and its answer (the pristine image is asked about a random attribute).
static void how_question(const DemoScene *s, DemoBalance *b, DemoMcq *m, bool shown) {
    int kind = s->distortion != DIST_NONE ? s->distortion : 1 + (int)rng_below(&b->rng, DEMO_N_DISTORTIONS - 1);
    const char *answer = HOW_ANSWER[kind][s->level];
    // the exposure question offers both directions
    const char *pool[8];
    int n = 0;
    for (int l = 0; l < DEMO_N_LEVELS; l++) pool[n++] = HOW_ANSWER[kind][l];
    if (kind == DIST_BRIGHT || kind == DIST_DARK)
        for (int l = 1; l < DEMO_N_LEVELS; l++) pool[n++] = HOW_ANSWER[kind == DIST_BRIGHT ? DIST_DARK : DIST_BRIGHT][l];
    mcq_make(m, b, HOW_QUESTION[kind], answer, pool, n, 4, shown);
    m->type = "how";
    m->concern = kind == DIST_BRIGHT || kind == DIST_DARK || kind == DIST_CONTRAST ? "other" : "distortion";
}

static void what_question(const DemoScene *s, DemoBalance *b, DemoMcq *m, bool shown) {
    mcq_make(m, b, "What is the main distortion in this image?", DISTORTION_TITLE[s->distortion], DISTORTION_TITLE,
             DEMO_N_DISTORTIONS, 4, shown);
    m->type = "what";
    m->concern = "distortion";
}

static void yes_no_question(const DemoScene *s, DemoBalance *b, DemoMcq *m) {
    bool yes = demo_balance_next(b, 2) == 0;
    int asked;  // a distortion, or DIST_NONE for "free of distortions?"
    if (s->distortion == DIST_NONE) {
        asked = yes ? DIST_NONE : 1 + (int)rng_below(&b->rng, DEMO_N_DISTORTIONS - 1);
    } else if (yes) {
        asked = s->distortion;
    } else {
        do asked = (int)rng_below(&b->rng, DEMO_N_DISTORTIONS);
        while (asked == s->distortion || confusable(asked, s->distortion));
    }
    mcq_yes_no(m, YESNO_QUESTION[asked], yes);
    m->type = "yes-or-no";
    int concern_of = asked == DIST_NONE ? s->distortion : asked;
    m->concern = concern_of == DIST_BRIGHT || concern_of == DIST_DARK || concern_of == DIST_CONTRAST ? "other" : "distortion";
}

static void open_answer(const DemoMcq *m, char *buf, size_t size) {
    const char *a = m->options[m->correct];
    if (strcmp(m->question, "What is the main distortion in this image?") == 0 && strcmp(a, "None") == 0)
        snprintf(buf, size, "There is no obvious distortion.");
    else snprintf(buf, size, "%s.", a);
}

int demo_qinstruct_records(const DemoScene *s, const char *id, const char *image, DemoBalance *b, json_t *out) {
    char rid[128], pathway[1024], open[256];
    const char *verdict = s->rated_good ? "good" : "poor";
    // 1. one conversation, as LLaVA's and Q-Instruct's multi-turn records: the
    // pathway (what is wrong, what it does to the content, the conclusion), a
    // what / how and a yes / no question (each open or multiple choice), in a
    // seeded order so that each kind also comes first, with the image, as
    // Q-Bench asks it. One image and one system prompt for three answers keeps
    // the tiny model's stages short.
    const char *visible = s->level <= 1 ? "is clearly visible" : s->level == 2 ? "can still be recognised" : "is hard to make out";
    snprintf(pathway, sizeof pathway, "%s The %s %s %s. Thus the quality of the image is %s.",
             PATHWAY_SENTENCE[s->distortion][s->level], demo_colour_name(s->colour), demo_shape_name(s->shape),
             visible, verdict);
    const char *pathway_question = PATHWAY_QUESTION[rng_below(&b->rng, 3)];
    DemoMcq m[2];
    bool choice[2];
    for (int k = 0; k < 2; k++) {
        choice[k] = rng_below(&b->rng, 2) == 0;
        if (k == 1) yes_no_question(s, b, &m[k]);
        else if (rng_below(&b->rng, 2) == 0) what_question(s, b, &m[k], choice[k]);
        else how_question(s, b, &m[k], choice[k]);
    }
    int order[3] = {0, 1, 2};  // pathway, what / how, yes / no
    for (int i = 2; i > 0; i--) {
        int j = (int)rng_below(&b->rng, (uint64_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    json_t *convs = json_array();
    for (int i = 0; i < 3; i++) {
        int k = order[i] - 1;  // -1: the pathway, else question m[k]
        if (k < 0) {
            add_pair(convs, pathway_question, pathway, i == 0);
        } else if (choice[k]) {
            add_mcq_pair(convs, &m[k], i == 0);
        } else {
            open_answer(&m[k], open, sizeof open);
            add_pair(convs, m[k].question, open, i == 0);
        }
    }
    snprintf(rid, sizeof rid, "%s-conversation", id);
    json_array_append_new(out, record(rid, image, convs));
    // 2. the rating, alone: Q-Bench's A3 reads the logits of "good" and "poor"
    // right after the first "ASSISTANT:" (Q-Instruct's eval_image_quality.py),
    // so the answer is the word, in the first turn
    convs = json_array();
    add_pair(convs, DEMO_RATE_QUESTION, verdict, true);
    snprintf(rid, sizeof rid, "%s-rating", id);
    json_array_append_new(out, record(rid, image, convs));
    return 2;
}

// ---- evaluation items (Q-Bench field names)

static json_t *a1_item(const DemoMcq *m, const char *image) {
    json_t *cands = json_array();
    for (int i = 0; i < m->n; i++) json_array_append_new(cands, json_string(m->options[i]));
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "img_path", image, "question", m->question, "candidates",
                     cands, "correct_ans", m->options[m->correct], "type", m->type, "concern", m->concern);
}

json_t *demo_eval_high_item(const DemoScene *s, const char *image, DemoBalance *b) {
    DemoMcq m;
    char q[64];
    int pick = (int)rng_below(&b->rng, 5);  // 2/5 shape, 2/5 colour, 1/5 yes/no
    if (pick == 4) {
        bool yes = demo_balance_next(b, 2) == 0;
        if (rng_below(&b->rng, 2) == 0) {
            int asked = yes ? s->shape : (s->shape + 1 + (int)rng_below(&b->rng, DEMO_N_SHAPES - 1)) % DEMO_N_SHAPES;
            snprintf(q, sizeof q, "Is the shape a %s?", demo_shape_name(asked));
        } else {
            int asked = yes ? s->colour : (s->colour + 1 + (int)rng_below(&b->rng, DEMO_N_COLOURS - 1)) % DEMO_N_COLOURS;
            snprintf(q, sizeof q, "Is the shape %s?", demo_colour_name(asked));
        }
        mcq_yes_no(&m, q, yes);
        m.type = "yes-or-no";
    } else if (pick < 2) {
        mcq_make(&m, b, "What shape is in the image?", SHAPE_TITLE[s->shape], SHAPE_TITLE, DEMO_N_SHAPES, 4, true);
        m.type = "what";
    } else {
        mcq_make(&m, b, "What colour is the shape?", COLOUR_TITLE[s->colour], COLOUR_TITLE, DEMO_N_COLOURS, 4, true);
        m.type = "what";
    }
    m.concern = "content";
    return a1_item(&m, image);
}

json_t *demo_eval_mcq_item(const DemoScene *s, const char *image, DemoBalance *b) {
    DemoMcq m;
    int pick = (int)rng_below(&b->rng, 3);
    if (pick == 0) what_question(s, b, &m, true);
    else if (pick == 1) how_question(s, b, &m, true);
    else yes_no_question(s, b, &m);
    json_t *item = a1_item(&m, image);
    json_object_set_new(item, "distortion", json_string(demo_distortion_name(s->distortion)));
    json_object_set_new(item, "level", json_integer(s->level));
    return item;
}

json_t *demo_eval_score_item(const DemoScene *s, const char *image) {
    return json_pack("{s:s, s:f, s:s, s:i}", "img_path", image, "gt_score", demo_mos(s->level), "distortion",
                     demo_distortion_name(s->distortion), "level", s->level);
}
