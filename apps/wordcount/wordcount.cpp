// The word-count demo: JSON lines {"text": ...} -> split into words -> keyed count -> top N.
// Shows the job API end to end: a source, a parallel flat_map, a keyed function with
// per-key state, sinks, dead letters for malformed lines, and the common options.

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>

#include "eddy/actors/engine.hpp"
#include "eddy/eddy.hpp"

namespace {

struct line {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(line, text)

struct word_count {
  std::string word;
  int64_t count = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(word_count, word, count)

/// Keeps the latest count of every word: the sink behind the printed top list.
struct latest_counts {
  std::mutex mtx;
  std::map<std::string, int64_t> counts;
  uint64_t updates = 0;
};

class latest_sink final : public eddy::sink_logic {
public:
  explicit latest_sink(std::shared_ptr<latest_counts> into)
    : into_(std::move(into)) {}
  void write(eddy::record_buffer& in) override {
    std::lock_guard guard{into_->mtx};
    for (auto& r : eddy::typed<word_count>(in).records) {
      auto& c = into_->counts[r.value.word];
      c = std::max(c, r.value.count);
      ++into_->updates;
    }
  }

private:
  std::shared_ptr<latest_counts> into_;
};

void split_words(const line& l, eddy::collector<std::string>& out) {
  std::string word;
  for (char c : l.text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      out.emit(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) {
    out.emit(std::move(word));
  }
}

void print_top(latest_counts& result, size_t top) {
  std::vector<std::pair<std::string, int64_t>> rows(result.counts.begin(), result.counts.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  rows.resize(std::min(top, rows.size()));
  std::printf("top %zu of %zu distinct words:\n", rows.size(), result.counts.size());
  for (auto& [word, count] : rows) {
    std::printf("  %-16s %8lld\n", word.c_str(), static_cast<long long>(count));
  }
}

void declare_options(eddy::command_line& cli) {
  namespace po = boost::program_options;
  auto add = cli.app_options().add_options();
  add("input", po::value<std::string>(), "JSONL input file (required); - reads stdin");
  add("output", po::value<std::string>(),
      "write every count update as JSONL here instead of printing the top list");
  add("top", po::value<int>()->default_value(10), "how many of the most frequent words to print");
  add("split-parallelism", po::value<int>()->default_value(2), "instances of the split operator");
  add("fail-on", po::value<std::string>(),
      "the count function throws on this word (to watch supervision: restarts, dead letters)");
  cli.positional().add("input", 1);
}

/// lines -> split -> key_by word -> count, into `job`; the count throws on `fail_on`.
eddy::stream<word_count> add_counting(eddy::job_builder& job, const std::string& input,
                                      uint32_t split_parallelism, const std::string& fail_on) {
  return job
    .source("lines", input == "-" ? eddy::stdin_source<line>() : eddy::jsonl_source<line>(input))
    .flat_map<std::string>("split", split_words)
    .parallelism(split_parallelism)
    .key_by([](const std::string& w) { return w; })
    // Known up front, so that `eddy console` can show a word's count before the word
    // comes again (e.g. right after a restart).
    .declare_state<eddy::value_state<int64_t>>("n")
    .process<word_count>("count", [fail_on](const std::string& w, auto& ctx, auto& out) {
      if (!fail_on.empty() && w == fail_on) {
        throw std::runtime_error("--fail-on: cannot count '" + w + "'");
      }
      auto& n = ctx.template value<int64_t>("n");
      n.set(n.get_or(0) + 1);
      out.emit(word_count{w, n.get()});
    });
}

/// The job of the command line, with the top list's sink into `result` unless --output.
caf::expected<eddy::job_graph> build_job(const eddy::command_line& cli,
                                         std::shared_ptr<latest_counts> result) {
  const auto& vm = cli.values();
  eddy::job_builder job{"wordcount"};
  job.partitions(cli.runtime.partitions);
  auto fail_on = vm.count("fail-on") ? vm["fail-on"].as<std::string>() : std::string{};
  auto counts = add_counting(job, vm["input"].as<std::string>(),
                             static_cast<uint32_t>(vm["split-parallelism"].as<int>()), fail_on);
  if (vm.count("output")) {
    // The updates go to the file instead of the top list (one consumer per stream for now).
    counts.sink("output", eddy::jsonl_sink<word_count>(vm["output"].as<std::string>()));
  } else {
    counts.sink("top", eddy::sink_def<word_count>{[result](const eddy::instance_context&) {
                                                    return std::make_unique<latest_sink>(result);
                                                  },
                                                  1});
  }
  return job.build();
}

/// Runs `graph` on an engine until it ends or the first SIGINT or SIGTERM stops it, then
/// calls `report(job, seconds)`. Returns the exit code: 0, 2 when the job cannot start, 1
/// when it failed, after printing "<program>: error: ..." (the same as the fraud detector's).
template <class Report>
int run_job(const eddy::command_line& cli, eddy::job_graph graph, const char* program,
            Report report) {
  // Before the start, which opens a journal per partition: a SIGINT meanwhile stops the job
  // as soon as it runs (and is not lost: a shell starts background jobs ignoring SIGINT).
  eddy::install_signal_handlers();
  eddy::engine engine{cli.runtime, cli.common};
  auto begin = std::chrono::steady_clock::now();
  auto started = engine.start(std::move(graph));
  if (!started) {
    std::cerr << program << ": error: " << eddy::describe(started.error()) << "\n";
    return 2;
  }
  auto handle = *started;
  if (auto err = handle->wait_stopping_on_signal()) {
    std::cerr << program << ": error: " << eddy::describe(err) << "\n";
    return 1;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  report(*handle, seconds);
  return 0;
}

/// What the actors of a finished job counted.
struct job_counts {
  uint64_t lines = 0;
  /// Words counted in this run: the replayed ones that were counted before are not.
  uint64_t words = 0;
  uint64_t counted_before = 0;
  uint64_t resumed_after = 0;
  uint64_t failed_records = 0;
};

job_counts count_actors(const eddy::job_handle& job) {
  job_counts n;
  for (const auto& a : job.actors()) {
    if (a.kind == eddy::node_kind::source) {
      n.lines += a.metrics->events_in;
      n.resumed_after = a.metrics->resumed_after;
    } else if (a.kind == eddy::node_kind::keyed) {
      n.words += a.metrics->events_in;
      n.counted_before += a.metrics->duplicates_dropped;
    }
    n.failed_records += a.metrics->dead_lettered;
  }
  n.words -= std::min(n.words, n.counted_before);
  return n;
}

/// The lines after the top list: resumption, throughput, dead letters, restarts.
void print_summary(const eddy::job_handle& job, const eddy::command_line& cli, double seconds) {
  auto n = count_actors(job);
  auto restarts = job.restarts();
  if (restarts == 0 && (n.resumed_after > 0 || n.counted_before > 0)) {
    std::printf("resumed from the state in %s after input line %llu; %llu replayed words were "
                "counted before and skipped (--state.reset starts over)\n",
                (cli.common.data_dir / "wordcount").c_str(),
                static_cast<unsigned long long>(n.resumed_after),
                static_cast<unsigned long long>(n.counted_before));
  }
  // After restarts the counters include what the sources read again.
  std::printf(restarts > 0 ? "%llu lines (with re-reads), %llu words in %.3f s: %.0f words/s on "
                             "%zu actors\n"
                           : "%llu lines, %llu words in %.3f s: %.0f words/s on %zu actors\n",
              static_cast<unsigned long long>(n.lines), static_cast<unsigned long long>(n.words),
              seconds, static_cast<double>(n.words) / seconds, job.actors().size());
  if (auto rejected = job.dead_letters().count(); rejected > 0) {
    std::printf("%llu malformed lines went to %s\n", static_cast<unsigned long long>(rejected),
                job.dead_letters().path().c_str());
  }
  if (restarts > 0 || n.failed_records > 0) {
    std::printf("%llu restarts; %llu records whose processing failed went to the dead-letter "
                "journal (list them with: eddy deadletters --data-dir %s)\n",
                static_cast<unsigned long long>(restarts),
                static_cast<unsigned long long>(n.failed_records), cli.common.data_dir.c_str());
  }
}

} // namespace

int main(int argc, char** argv) {
  eddy::command_line cli{"wordcount", "count the words of a JSONL file of {\"text\": ...} lines"};
  declare_options(cli);
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  const auto& vm = cli.values();
  if (!vm.count("input")) {
    return cli.usage_error("missing --input FILE");
  }
  auto split_parallelism = vm["split-parallelism"].as<int>();
  if (split_parallelism < 1 || split_parallelism > 256) {
    return cli.usage_error("--split-parallelism must be in 1..256");
  }
  auto result = std::make_shared<latest_counts>();
  auto graph = build_job(cli, result);
  if (!graph) {
    std::cerr << "wordcount: error: " << eddy::describe(graph.error()) << "\n";
    return 2;
  }
  return run_job(cli, std::move(*graph), "wordcount",
                 [&](const eddy::job_handle& job, double seconds) {
                   if (!vm.count("output")) {
                     print_top(*result, static_cast<size_t>(vm["top"].as<int>()));
                   }
                   print_summary(job, cli, seconds);
                 });
}
