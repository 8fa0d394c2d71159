// w05_stl: STL-heavy C++ -- a small text indexer.
//
// Models: ordinary modern C++ application code (search and analytics
// services, build systems, game tooling) that leans on the standard library:
// std::string building and copying, std::vector growth by push_back,
// std::unordered_map and std::map of strings, erase and rehash. Each thread
// tokenizes documents into words, builds an inverted index and sorted word
// counts, answers queries by intersecting posting lists, then evicts old
// documents. Threads: one per CPU, each with its own index.
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace {

long docs_per_thread;

std::string make_word(bench_rng &r) {
  // mostly short words (inline in std::string), some long ones (heap)
  size_t len = bench_rng_below(&r, 5) == 0 ? 16 + bench_rng_below(&r, 24) : 2 + bench_rng_below(&r, 9);
  std::string w;
  for (size_t i = 0; i < len; ++i) w += (char)('a' + bench_rng_below(&r, 1 + bench_rng_below(&r, 26)));
  return w;
}

void *indexer(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng r = bench_rng_make(5000 + (uint64_t)id);
  std::vector<std::string> vocab;
  for (int i = 0; i < 20000; ++i) vocab.push_back(make_word(r));

  std::unordered_map<std::string, std::vector<uint32_t>> index;
  std::map<std::string, uint32_t> counts;
  std::vector<std::string> docs;  // the document texts currently indexed
  uint64_t sum = 0;

  for (long d = 0; d < docs_per_thread; ++d) {
    // compose a document of 20-300 words
    std::string text;
    size_t nw = 20 + bench_rng_below(&r, 281);
    for (size_t i = 0; i < nw; ++i) {
      // Zipf-like: low indices are much more frequent
      size_t k = bench_rng_below(&r, 1 + bench_rng_below(&r, vocab.size()));
      text += vocab[k];
      text += ' ';
    }
    uint32_t doc_id = (uint32_t)docs.size();
    docs.push_back(text);

    // tokenize into a vector of strings, then index
    std::vector<std::string> words;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == ' ') {
        words.emplace_back(text, start, i - start);
        start = i + 1;
      }
    for (const std::string &w : words) {
      std::vector<uint32_t> &post = index[w];
      if (post.empty() || post.back() != doc_id) post.push_back(doc_id);
      ++counts[w];
    }

    // a query every few documents: intersect two posting lists
    if (d % 4 == 0) {
      const std::string &a = vocab[bench_rng_below(&r, 64)];
      const std::string &b = vocab[bench_rng_below(&r, 512)];
      auto ia = index.find(a), ib = index.find(b);
      if (ia != index.end() && ib != index.end()) {
        std::vector<uint32_t> both;
        std::set_intersection(ia->second.begin(), ia->second.end(), ib->second.begin(), ib->second.end(),
                              std::back_inserter(both));
        sum += both.size();
      }
    }

    // evict: every 400 documents drop the index and start a new generation,
    // keeping the 50 most frequent words' counts
    if (docs.size() == 400) {
      std::vector<std::pair<uint32_t, std::string>> top;
      for (const auto &kv : counts) top.emplace_back(kv.second, kv.first);
      std::partial_sort(top.begin(), top.begin() + std::min<size_t>(50, top.size()), top.end(),
                        [](const auto &x, const auto &y) { return x.first > y.first; });
      top.resize(std::min<size_t>(50, top.size()));
      for (const auto &t : top) sum += t.first + t.second.size();
      index.clear();
      index.rehash(0);
      counts.clear();
      for (const auto &t : top) counts.emplace(t.second, t.first);
      docs.clear();
      docs.shrink_to_fit();
    }
  }
  sum += index.size() + counts.size();
  return reinterpret_cast<void *>(static_cast<uintptr_t>(sum));
}

}  // namespace

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(1, 1);
  docs_per_thread = bench_scaled(30000, scale, 10) / nt;

  double t0 = bench_now();
  std::vector<pthread_t> th(nt);
  for (int i = 0; i < nt; ++i) pthread_create(&th[i], nullptr, indexer, reinterpret_cast<void *>((intptr_t)i));
  uint64_t checksum = 0;
  for (int i = 0; i < nt; ++i) {
    void *ret = nullptr;
    pthread_join(th[i], &ret);
    checksum += static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ret));
  }
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " documents=%ld", docs_per_thread * nt);
  bench_report("stl", nt, t1 - t0, checksum, extra);
  return 0;
}
