// SentencePiece BPE models (tokenizer.model of LLaMA-2, Vicuna, mPLUG-Owl2).
//
// Reads the ModelProto protobuf directly (pieces, trainer and normalizer
// specs) and encodes exactly like sentencepiece's bpe_model.cc: whitespace
// escaped to U+2581 with a dummy prefix, the text split into characters,
// then the adjacent pair whose merge is the highest-scoring piece merged
// first (leftmost on ties), and unknown pieces spelled as <0xXX> byte pieces
// when the model has byte fallback.
#ifndef VLM_TEXT_SENTENCEPIECE_H
#define VLM_TEXT_SENTENCEPIECE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/strmap.h"
#include "text/ids.h"

typedef enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER_DEFINED = 4, SP_UNUSED = 5, SP_BYTE = 6 } SpPieceType;

typedef struct {
    char *piece;   // points into the model's string arena
    uint32_t len;
    float score;
    SpPieceType type;
} SpPiece;

typedef struct {
    SpPiece *pieces;
    int n_pieces;
    char *arena;
    StrMap normal;       // NORMAL / USER_DEFINED / UNUSED pieces -> id (bpe_model's pieces_)
    StrMap reserved;     // CONTROL / UNKNOWN / BYTE pieces -> id
    int byte_ids[256];   // id of <0xXX>, -1 if absent
    int unk_id, bos_id, eos_id, pad_id;
    bool byte_fallback;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool has_user_defined;
} SpModel;

// Parses a tokenizer.model image; name is used in errors.
int sp_load(SpModel *m, const unsigned char *data, size_t size, const char *name);
void sp_free(SpModel *m);

// Appends the ids of text (no BOS/EOS) to out and, when spans is not NULL,
// each token's source bytes [start, end) offset by base. dummy_prefix false
// turns the model's add_dummy_prefix off (transformers' non-legacy mode).
int sp_encode(const SpModel *m, const char *text, size_t len, bool dummy_prefix, IdBuf *out, SpanBuf *spans, size_t base);
// Appends the text of one piece id as decoded in context (first: is it the
// first non-control piece, whose dummy-prefix space is dropped).
int sp_decode_piece(const SpModel *m, int id, bool first, StrBuf *out);
int sp_piece_to_id(const SpModel *m, const char *piece, size_t len);

#endif
