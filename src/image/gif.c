// GIF decoding with giflib: the first frame, composed as Pillow's
// GifImagePlugin composes it. The canvas is the logical screen, grown to hold
// the frame if it sticks out; pixels outside the frame hold the frame's
// transparent index (or 0); colours come from the frame's local colour table,
// else the global one; with neither, or a table that maps every index i to
// (i,i,i), the image is mode L and the index itself is the gray level.
#include <gif_lib.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "image/image.h"

typedef struct {
    const unsigned char *data;
    size_t size, pos;
} GifSource;

static int on_read(GifFileType *gif, GifByteType *dst, int n) {
    GifSource *s = gif->UserData;
    size_t left = s->size - s->pos, k = (size_t)n < left ? (size_t)n : left;
    memcpy(dst, s->data + s->pos, k);
    s->pos += k;
    return (int)k;
}

static int gif_error(GifFileType *gif, int code, const char *name) {
    int ignored;
    const char *why = GifErrorString(code);
    if (gif) DGifCloseFile(gif, &ignored);
    return vlm_fail(VLM_ERR_INPUT, name, NULL, "corrupt GIF: %s", why ? why : "unknown error");
}

static bool is_gray_ramp(const ColorMapObject *map) {
    for (int i = 0; i < map->ColorCount; i++)
        if (map->Colors[i].Red != i || map->Colors[i].Green != i || map->Colors[i].Blue != i) return false;
    return true;
}

// The first image's indices into a canvas of indices; returns the colour map.
static int read_first_frame(GifFileType *gif, const char *name, uint8_t **canvas_out, int *cw, int *ch,
                            const ColorMapObject **map_out) {
    int transparent = -1;
    GifRecordType type;
    do {
        if (DGifGetRecordType(gif, &type) == GIF_ERROR) return gif_error(gif, gif->Error, name);
        if (type == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) return gif_error(gif, gif->Error, name);
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) transparent = (ext[1] & 1) ? ext[4] : -1;
            while (ext)
                if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) return gif_error(gif, gif->Error, name);
        } else if (type == TERMINATE_RECORD_TYPE) {
            int ignored;
            DGifCloseFile(gif, &ignored);
            return vlm_fail(VLM_ERR_INPUT, name, NULL, "corrupt GIF: no image in the file");
        }
    } while (type != IMAGE_DESC_RECORD_TYPE);
    if (DGifGetImageDesc(gif) == GIF_ERROR) return gif_error(gif, gif->Error, name);
    GifImageDesc d = gif->Image;
    int w = gif->SWidth > d.Left + d.Width ? gif->SWidth : d.Left + d.Width;
    int h = gif->SHeight > d.Top + d.Height ? gif->SHeight : d.Top + d.Height;
    if (image_check_size(w, h, name) != VLM_OK) {  // before the canvas
        int ignored;
        DGifCloseFile(gif, &ignored);
        return VLM_ERR_INPUT;
    }
    uint8_t *canvas = vlm_malloc((size_t)w * h);
    if (!canvas) return VLM_ERR_FAIL;
    memset(canvas, transparent >= 0 ? transparent : 0, (size_t)w * h);
    // interlaced frames store rows in four passes
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = d.Interlace ? 4 : 1;
    for (int p = 0; p < passes; p++) {
        for (int y = d.Interlace ? start[p] : 0; y < d.Height; y += d.Interlace ? step[p] : 1) {
            if (d.Width == 0) break;
            if (DGifGetLine(gif, canvas + (size_t)(d.Top + y) * w + d.Left, d.Width) == GIF_ERROR) {
                free(canvas);
                return gif_error(gif, gif->Error, name);
            }
        }
    }
    *canvas_out = canvas;
    *cw = w;
    *ch = h;
    *map_out = d.ColorMap ? d.ColorMap : gif->SColorMap;
    return VLM_OK;
}

int gif_decode(const void *data, size_t size, const char *name, Image *out) {
    GifSource src = {.data = data, .size = size, .pos = 0};
    int err = 0;
    out->rgb = NULL;
    GifFileType *gif = DGifOpen(&src, on_read, &err);
    if (!gif) return gif_error(NULL, err, name);
    uint8_t *canvas = NULL;
    int w = 0, h = 0;
    const ColorMapObject *map = NULL;
    int rc = read_first_frame(gif, name, &canvas, &w, &h, &map);
    if (rc != VLM_OK) return rc;
    // the colour map belongs to gif: convert before closing it
    rc = image_alloc(out, w, h, name);
    if (rc == VLM_OK) {
        bool gray = !map || is_gray_ramp(map);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            uint8_t *px = out->rgb + 3 * i;
            int v = canvas[i];
            if (gray) px[0] = px[1] = px[2] = (uint8_t)v;
            else if (v < map->ColorCount) px[0] = map->Colors[v].Red, px[1] = map->Colors[v].Green, px[2] = map->Colors[v].Blue;
            else px[0] = px[1] = px[2] = 0;  // Pillow's palette is zero beyond the table
        }
    }
    free(canvas);
    int ignored;
    DGifCloseFile(gif, &ignored);
    return rc;
}
