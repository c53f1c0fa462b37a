// The demo's scenes: one large shape in a named colour on a plain, slightly
// graded background, drawn with 4x4 supersampled edges.
#include <math.h>  // fabsf

#include "core/error.h"
#include "demo/demo.h"

static const char *const SHAPES[DEMO_N_SHAPES] = {"circle", "square", "triangle", "cross"};
static const char *const COLOURS[DEMO_N_COLOURS] = {"red", "green", "blue", "yellow", "purple"};
static const unsigned char COLOUR_RGB[DEMO_N_COLOURS][3] = {
    {215, 40, 40}, {40, 170, 60}, {40, 80, 220}, {235, 205, 40}, {150, 60, 190}};
static const char *const BACKGROUNDS[DEMO_N_BACKGROUNDS] = {"gray", "black", "white"};
static const float BACKGROUND_LEVEL[DEMO_N_BACKGROUNDS] = {128, 24, 232};
static const char *const DISTORTIONS[DEMO_N_DISTORTIONS] = {"none", "blur", "noise", "jpeg",
                                                            "bright", "dark", "contrast"};

const char *demo_shape_name(int shape) { return shape >= 0 && shape < DEMO_N_SHAPES ? SHAPES[shape] : "?"; }
const char *demo_colour_name(int colour) { return colour >= 0 && colour < DEMO_N_COLOURS ? COLOURS[colour] : "?"; }
const char *demo_background_name(int b) { return b >= 0 && b < DEMO_N_BACKGROUNDS ? BACKGROUNDS[b] : "?"; }
const char *demo_distortion_name(int d) { return d >= 0 && d < DEMO_N_DISTORTIONS ? DISTORTIONS[d] : "?"; }

void demo_scene_sample(DemoScene *s, int size, Rng *rng) {
    s->shape = (int)rng_below(rng, DEMO_N_SHAPES);
    s->colour = (int)rng_below(rng, DEMO_N_COLOURS);
    s->background = (int)rng_below(rng, DEMO_N_BACKGROUNDS);
    // a shape spanning 55-75% of the image, centred within +-10%
    s->radius = size * (0.28f + 0.09f * rng_uniform(rng));
    s->cx = size * (0.4f + 0.2f * rng_uniform(rng));
    s->cy = size * (0.4f + 0.2f * rng_uniform(rng));
    s->gradient = 40 * rng_uniform(rng) - 20;
    // levels uniform over 0..3 (a quarter pristine), kinds uniform among the six distortions
    s->level = (int)rng_below(rng, DEMO_N_LEVELS);
    s->distortion = s->level == 0 ? DIST_NONE : 1 + (int)rng_below(rng, DEMO_N_DISTORTIONS - 1);
    // a fifth of the other images are JPEGs too, near-lossless, so the format says nothing
    s->jpeg_file = s->distortion == DIST_JPEG || rng_below(rng, 5) == 0;
    s->rated_good = rng_uniform_double(rng) < demo_p_good(s->level);
}

// Whether (x, y), relative to the centre, lies inside a shape of radius r.
static bool inside(int shape, float x, float y, float r) {
    switch (shape) {
    case SHAPE_CIRCLE: return x * x + y * y <= r * r;
    case SHAPE_SQUARE: return fabsf(x) <= 0.82f * r && fabsf(y) <= 0.82f * r;
    case SHAPE_TRIANGLE: {
        // pointing up, circumradius r: apex (0, -r), base at y = r/2 (box centred: shifted by r/4)
        float yy = y - 0.25f * r;
        if (yy > 0.5f * r || yy < -r) return false;
        float half_width = (yy + r) / (1.5f * r) * (0.866f * r);
        return fabsf(x) <= half_width;
    }
    case SHAPE_CROSS: {
        float arm = 0.34f * r;
        return (fabsf(x) <= arm && fabsf(y) <= r) || (fabsf(y) <= arm && fabsf(x) <= r);
    }
    default: return false;
    }
}

int demo_draw(const DemoScene *s, int size, Image *im) {
    if (image_alloc(im, size, size, "demo image") != VLM_OK) return VLM_ERR_FAIL;
    const unsigned char *fg = COLOUR_RGB[s->colour];
    for (int y = 0; y < size; y++) {
        float bg = BACKGROUND_LEVEL[s->background] + s->gradient * ((y + 0.5f) / size - 0.5f);
        for (int x = 0; x < size; x++) {
            int hits = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++)
                    hits += inside(s->shape, x + (sx + 0.5f) / 4 - s->cx, y + (sy + 0.5f) / 4 - s->cy, s->radius);
            float cover = hits / 16.0f;
            for (int c = 0; c < 3; c++) {
                float v = bg * (1 - cover) + fg[c] * cover;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                im->rgb[((size_t)y * size + x) * 3 + c] = (uint8_t)(v + 0.5f);
            }
        }
    }
    return VLM_OK;
}
