"""Reference orders for LLaVA's group_by_modality_length sampler.

The functions below follow llava/train/llava_trainer.py (LLaVA-1.5) line for
line; the only change is that torch.randperm draws from permutations given
by the fixture (recorded with the result), so the C implementation can
replay the exact same draws. Pure Python, no packages:
    python3 tools/make_sampler_fixtures.py > tests/fixtures/data/sampler.json
"""
import json
import random


class Perms:
    def __init__(self):
        self.drawn = []
        self.rng = random.Random(0)

    def randperm(self, n):
        p = list(range(n))
        self.rng.shuffle(p)
        self.drawn.append(p)
        return p


def split_to_even_chunks(indices, lengths, num_chunks):
    if len(indices) % num_chunks != 0:
        return [indices[i::num_chunks] for i in range(num_chunks)]
    num_indices_per_chunk = len(indices) // num_chunks
    chunks = [[] for _ in range(num_chunks)]
    chunks_lengths = [0 for _ in range(num_chunks)]
    for index in indices:
        shortest_chunk = chunks_lengths.index(min(chunks_lengths))
        chunks[shortest_chunk].append(index)
        chunks_lengths[shortest_chunk] += lengths[index]
        if len(chunks[shortest_chunk]) == num_indices_per_chunk:
            chunks_lengths[shortest_chunk] = float("inf")
    return chunks


def get_length_grouped_indices(perms, lengths, batch_size, world_size):
    indices = perms.randperm(len(lengths))
    megabatch_size = world_size * batch_size
    megabatches = [indices[i:i + megabatch_size] for i in range(0, len(lengths), megabatch_size)]
    megabatches = [sorted(megabatch, key=lambda i: lengths[i], reverse=True) for megabatch in megabatches]
    megabatches = [split_to_even_chunks(megabatch, lengths, world_size) for megabatch in megabatches]
    return [i for megabatch in megabatches for batch in megabatch for i in batch]


def get_modality_length_grouped_indices(perms, lengths, batch_size, world_size):
    assert all(l != 0 for l in lengths), "Should not have zero length."
    if all(l > 0 for l in lengths) or all(l < 0 for l in lengths):
        return get_length_grouped_indices(perms, lengths, batch_size, world_size)
    mm_indices, mm_lengths = zip(*[(i, l) for i, l in enumerate(lengths) if l > 0])
    lang_indices, lang_lengths = zip(*[(i, -l) for i, l in enumerate(lengths) if l < 0])
    mm_shuffle = [mm_indices[i] for i in get_length_grouped_indices(perms, mm_lengths, batch_size, world_size)]
    lang_shuffle = [lang_indices[i] for i in get_length_grouped_indices(perms, lang_lengths, batch_size, world_size)]
    megabatch_size = world_size * batch_size
    mm_megabatches = [mm_shuffle[i:i + megabatch_size] for i in range(0, len(mm_shuffle), megabatch_size)]
    lang_megabatches = [lang_shuffle[i:i + megabatch_size] for i in range(0, len(lang_shuffle), megabatch_size)]
    last_mm = mm_megabatches[-1]
    last_lang = lang_megabatches[-1]
    additional_batch = last_mm + last_lang
    megabatches = mm_megabatches[:-1] + lang_megabatches[:-1]
    megabatch_indices = perms.randperm(len(megabatches))
    megabatches = [megabatches[i] for i in megabatch_indices]
    if len(additional_batch) > 0:
        megabatches.append(sorted(additional_batch))
    return [i for megabatch in megabatches for i in megabatch]


def main():
    r = random.Random(1)
    cases = []
    shapes = [(37, 4, 1), (64, 4, 2), (101, 3, 8), (16, 16, 1), (9, 2, 2), (50, 1, 1), (200, 5, 4), (23, 4, 3)]
    for n, batch, world in shapes:
        for kind in ("mixed", "image_only", "text_only"):
            lengths = []
            for _ in range(n):
                l = r.choice([r.randint(1, 40), r.randint(1, 5), 7])  # many ties
                sign = {"mixed": r.choice([1, 1, -1]), "image_only": 1, "text_only": -1}[kind]
                lengths.append(sign * l)
            if kind == "mixed" and (all(l > 0 for l in lengths) or all(l < 0 for l in lengths)):
                lengths[0] = -lengths[0]
            perms = Perms()
            order = get_modality_length_grouped_indices(perms, lengths, batch, world)
            cases.append({"batch": batch, "world": world, "lengths": lengths, "perms": perms.drawn, "order": order})
    print(json.dumps({"generator": "llava/train/llava_trainer.py (LLaVA-1.5) with given permutations",
                      "cases": cases}))


if __name__ == "__main__":
    main()
