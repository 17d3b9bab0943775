#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "eddy/config/options.hpp"
#include "eddy/core/error.hpp"

using eddy::command_line;
using eddy::runtime_options;
namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

/// Redirects a standard stream into a string for the lifetime of the object.
class capture {
public:
  explicit capture(std::ostream& stream)
    : stream_(&stream)
    , old_(stream.rdbuf(buf_.rdbuf())) {}
  ~capture() {
    stream_->rdbuf(old_);
  }
  capture(const capture&) = delete;
  capture& operator=(const capture&) = delete;

  [[nodiscard]] std::string text() const {
    return buf_.str();
  }

private:
  std::ostringstream buf_;
  std::ostream* stream_;
  std::streambuf* old_;
};

/// Parses `args` (without the program name) and keeps what went to stderr and stdout.
struct parse_result {
  std::optional<int> code;
  std::string err;
  std::string out;
};

parse_result run(command_line& cl, const std::vector<std::string>& args) {
  std::vector<const char*> argv{"eddy-test"};
  for (auto& a : args) {
    argv.push_back(a.c_str());
  }
  capture err{std::cerr};
  capture out{std::cout};
  parse_result result;
  result.code = cl.parse(static_cast<int>(argv.size()), argv.data());
  result.err = err.text();
  result.out = out.text();
  return result;
}

parse_result run(const std::vector<std::string>& args) {
  command_line cl{"eddy-test", "a test program"};
  return run(cl, args);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// An INI file in the temp directory, removed afterwards.
class ini_file {
public:
  explicit ini_file(const std::string& content) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("eddy-unit-options-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter++) + ".ini");
    std::ofstream out{path_};
    REQUIRE(out);
    out << content;
  }
  ~ini_file() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  ini_file(const ini_file&) = delete;
  ini_file& operator=(const ini_file&) = delete;

  [[nodiscard]] std::string path() const {
    return path_.string();
  }

private:
  fs::path path_;
};

} // namespace

TEST_CASE("command_line without arguments keeps every default") {
  command_line cl{"eddy-test", "a test program"};
  auto r = run(cl, {});
  CHECK_FALSE(r.code.has_value());
  CHECK(r.err.empty());
  CHECK(cl.common.config_file.empty());
  CHECK(cl.common.data_dir == fs::path{"./data"});
  CHECK(cl.common.node_id.empty());
  CHECK(cl.common.node_host == "127.0.0.1");
  CHECK(cl.common.node_port == 4710);
  CHECK(cl.common.node_seeds.empty());
  CHECK(cl.common.http_host == "127.0.0.1");
  CHECK(cl.common.http_port == 8080);
  CHECK(cl.common.log_level == "info");
  CHECK(cl.runtime.threads == 0);
  CHECK(cl.runtime.partitions == 128);
  CHECK(cl.runtime.batch_events_max == 1024);
  CHECK(cl.runtime.credit_batches_max == 8);
  CHECK(cl.runtime.linger_ms == 5);
  CHECK(cl.runtime.dead_letters == fs::path{"./data"} / "deadletters.jsonl");
}

TEST_CASE("command_line parses every common and runtime flag") {
  command_line cl{"eddy-test", "a test program"};
  auto r = run(cl, {"--data-dir",
                    "/var/eddy",
                    "--node.id=n1",
                    "--node.host",
                    "0.0.0.0",
                    "--node.port=0",
                    "--node.seeds",
                    "a:1,b:2",
                    "--http.host=::1",
                    "--http.port",
                    "9090",
                    "--log.level=debug",
                    "--job.partitions=16",
                    "--runtime.threads",
                    "4",
                    "--runtime.batch-events-max=64",
                    "--runtime.credit-batches-max=2",
                    "--runtime.linger-ms",
                    "100",
                    "--runtime.dead-letters=/tmp/dlq.jsonl"});
  REQUIRE_MESSAGE(!r.code.has_value(), r.err);
  CHECK(cl.common.data_dir == fs::path{"/var/eddy"});
  CHECK(cl.common.node_id == "n1");
  CHECK(cl.common.node_host == "0.0.0.0");
  CHECK(cl.common.node_port == 0);
  CHECK(cl.common.node_seeds == "a:1,b:2");
  CHECK(cl.common.http_host == "::1");
  CHECK(cl.common.http_port == 9090);
  CHECK(cl.common.log_level == "debug");
  CHECK(cl.runtime.partitions == 16);
  CHECK(cl.runtime.threads == 4);
  CHECK(cl.runtime.batch_events_max == 64);
  CHECK(cl.runtime.credit_batches_max == 2);
  CHECK(cl.runtime.linger_ms == 100);
  CHECK(cl.runtime.dead_letters == fs::path{"/tmp/dlq.jsonl"});
}

TEST_CASE("the dead-letter file defaults to a file in the data directory") {
  command_line cl{"eddy-test", "a test program"};
  auto r = run(cl, {"--data-dir=/srv/x"});
  REQUIRE_FALSE(r.code.has_value());
  CHECK(cl.runtime.dead_letters == fs::path{"/srv/x/deadletters.jsonl"});
}

TEST_CASE("command_line accepts the limits of every range") {
  command_line cl{"eddy-test", "a test program"};
  auto r = run(cl, {"--node.port=65535", "--http.port=0", "--job.partitions=4096",
                    "--runtime.threads=256", "--runtime.batch-events-max=1048576",
                    "--runtime.credit-batches-max=1024", "--runtime.linger-ms=60000"});
  REQUIRE_MESSAGE(!r.code.has_value(), r.err);
  CHECK(cl.common.node_port == 65535);
  CHECK(cl.runtime.partitions == 4096);
  CHECK(cl.runtime.threads == 256);
  CHECK(cl.runtime.batch_events_max == 1048576);
  CHECK(cl.runtime.credit_batches_max == 1024);
  CHECK(cl.runtime.linger_ms == 60000);
}

TEST_CASE("app options and positional arguments are parsed with the common ones") {
  command_line cl{"eddy-test", "a test program"};
  cl.app_options().add_options()("input", po::value<std::string>(), "input file")(
    "limit", po::value<int>()->default_value(3), "a limit");
  cl.positional().add("input", 1);
  auto r = run(cl, {"events.jsonl", "--limit=7"});
  REQUIRE_MESSAGE(!r.code.has_value(), r.err);
  CHECK(cl.values()["input"].as<std::string>() == "events.jsonl");
  CHECK(cl.values()["limit"].as<int>() == 7);

  command_line extra{"eddy-test", "a test program"};
  extra.app_options().add_options()("input", po::value<std::string>(), "input file");
  extra.positional().add("input", 1);
  auto too_many = run(extra, {"a.jsonl", "b.jsonl"});
  CHECK(too_many.code == 2);
}

TEST_CASE("an INI file given with --config sets options by section") {
  ini_file ini{"data-dir=/from/file\n"
               "[runtime]\n"
               "batch-events-max=64\n"
               "linger-ms=50\n"
               "[job]\n"
               "partitions=32\n"
               "[log]\n"
               "level=warn\n"};
  command_line cl{"eddy-test", "a test program"};
  auto r = run(cl, {"--config", ini.path()});
  REQUIRE_MESSAGE(!r.code.has_value(), r.err);
  CHECK(cl.common.config_file == ini.path());
  CHECK(cl.common.data_dir == fs::path{"/from/file"});
  CHECK(cl.runtime.batch_events_max == 64);
  CHECK(cl.runtime.linger_ms == 50);
  CHECK(cl.runtime.partitions == 32);
  CHECK(cl.common.log_level == "warn");
  // Untouched options keep their defaults.
  CHECK(cl.runtime.credit_batches_max == 8);
  CHECK(cl.runtime.dead_letters == fs::path{"/from/file/deadletters.jsonl"});
}

TEST_CASE("flags override the INI file") {
  ini_file ini{"[runtime]\nbatch-events-max=64\nlinger-ms=50\n"};
  command_line cl{"eddy-test", "a test program"};
  // The flag comes before --config and after it: the flag wins either way.
  auto r = run(
    cl, {"--runtime.batch-events-max=128", "--config=" + ini.path(), "--runtime.linger-ms", "7"});
  REQUIRE_MESSAGE(!r.code.has_value(), r.err);
  CHECK(cl.runtime.batch_events_max == 128);
  CHECK(cl.runtime.linger_ms == 7);
}

TEST_CASE("an unknown option returns 2 and names it on stderr") {
  auto r = run({"--runtime.no-such-option=1"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "eddy-test: error: "));
  CHECK(contains(r.err, "no-such-option"));
}

TEST_CASE("a malformed or out-of-range value returns 2 and names the option") {
  struct bad_case {
    std::vector<std::string> args;
    std::string option;
  };
  std::vector<bad_case> cases{
    {{"--runtime.batch-events-max=abc"}, "batch-events-max"},
    {{"--runtime.batch-events-max=-1"}, "batch-events-max"},
    {{"--runtime.batch-events-max=0"}, "batch-events-max"},
    {{"--runtime.batch-events-max=1048577"}, "batch-events-max"},
    {{"--runtime.batch-events-max=1.5"}, "batch-events-max"},
    {{"--runtime.batch-events-max=99999999999999999999"}, "batch-events-max"},
    {{"--runtime.batch-events-max="}, "batch-events-max"},
    {{"--runtime.credit-batches-max=0"}, "credit-batches-max"},
    {{"--runtime.credit-batches-max=1025"}, "credit-batches-max"},
    {{"--runtime.linger-ms=0"}, "linger-ms"},
    {{"--runtime.linger-ms=60001"}, "linger-ms"},
    {{"--runtime.threads=-1"}, "threads"},
    {{"--runtime.threads=257"}, "threads"},
    {{"--job.partitions=0"}, "partitions"},
    {{"--job.partitions=4097"}, "partitions"},
    {{"--node.port=65536"}, "node.port"},
    {{"--node.port=-1"}, "node.port"},
    {{"--http.port=http"}, "http.port"},
    {{"--log.level=verbose"}, "log.level"},
    {{"--log.level="}, "log.level"},
    {{"--supervision.max-restarts=1001"}, "supervision.max-restarts"},
    {{"--supervision.window-s=0"}, "supervision.window-s"},
    {{"--supervision.backoff-ms=-5"}, "supervision.backoff-ms"},
    {{"--supervision.backoff-ms=5000", "--supervision.backoff-max-ms=100"},
     "supervision.backoff-ms"},
    {{"--supervision.poison-attempts=0"}, "supervision.poison-attempts"},
    {{"--supervision.policy=count=retry"}, "supervision.policy item 'count=retry'"},
    {{"--supervision.policy=count"}, "supervision.policy item 'count'"},
    {{"--supervision.policy=count=stop,=escalate"}, "supervision.policy item '=escalate'"},
  };
  for (auto& c : cases) {
    CAPTURE(c.args[0]);
    auto r = run(c.args);
    CHECK(r.code == 2);
    CAPTURE(r.err);
    CHECK(contains(r.err, "eddy-test: error: "));
    CHECK(contains(r.err, c.option));
  }
}

TEST_CASE("supervision flags are parsed with their defaults") {
  command_line defaults{"eddy-test", "test"};
  REQUIRE(run(defaults, {}).code == std::nullopt);
  CHECK(defaults.runtime.supervision.restarts_max == 5);
  CHECK(defaults.runtime.supervision.window_s == 10);
  CHECK(defaults.runtime.supervision.backoff_ms == 100);
  CHECK(defaults.runtime.supervision.poison_attempts == 3);
  CHECK(defaults.runtime.supervision.policies.empty());
  CHECK(!defaults.runtime.supervision.replay_dead_letters);

  command_line cl{"eddy-test", "test"};
  auto r = run(
    cl, {"--supervision.max-restarts=2", "--supervision.window-s=60", "--supervision.backoff-ms=10",
         "--supervision.backoff-max-ms=500", "--supervision.poison-attempts=1",
         "--supervision.policy=count=stop,parse=escalate", "--supervision.replay-dead-letters"});
  CAPTURE(r.err);
  REQUIRE(r.code == std::nullopt);
  const auto& s = cl.runtime.supervision;
  CHECK(s.restarts_max == 2);
  CHECK(s.window_s == 60);
  CHECK(s.backoff_ms == 10);
  CHECK(s.backoff_max_ms == 500);
  CHECK(s.poison_attempts == 1);
  CHECK(s.policies == "count=stop,parse=escalate");
  CHECK(s.replay_dead_letters);
}

TEST_CASE("a missing or repeated value returns 2") {
  CHECK(run({"--runtime.linger-ms"}).code == 2);
  CHECK(run({"--job.partitions=4", "--job.partitions=8"}).code == 2);
  CHECK(run({"--config"}).code == 2);
}

TEST_CASE("a missing config file returns 2 and names the file") {
  auto missing = (fs::temp_directory_path() / "eddy-unit-options-missing-file.ini").string();
  auto r = run({"--config", missing});
  CHECK(r.code == 2);
  CHECK(contains(r.err, missing));
}

// std::ifstream opens a directory without failing on Linux; a directory must still be
// rejected instead of silently reading nothing.
TEST_CASE("a directory given as the config file returns 2") {
  auto dir = fs::temp_directory_path().string();
  auto r = run({"--config", dir});
  CHECK(r.code == 2);
  CHECK(contains(r.err, dir));
}

TEST_CASE("an INI file with an unknown option or a bad value returns 2") {
  SUBCASE("unknown option") {
    ini_file ini{"[runtime]\nbatch-size=64\n"};
    auto r = run({"--config", ini.path()});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "batch-size"));
  }
  SUBCASE("malformed value") {
    ini_file ini{"[runtime]\nbatch-events-max=lots\n"};
    CHECK(run({"--config", ini.path()}).code == 2);
  }
  SUBCASE("out of range value") {
    ini_file ini{"[job]\npartitions=0\n"};
    auto r = run({"--config", ini.path()});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "partitions"));
  }
  SUBCASE("not an INI file") {
    ini_file ini{"this is not = [ an ini\n[unterminated\n"};
    CHECK(run({"--config", ini.path()}).code == 2);
  }
}

TEST_CASE("--help returns 0 and lists the options") {
  for (std::string flag : {"--help", "-h"}) {
    CAPTURE(flag);
    command_line cl{"eddy-test", "a test program"};
    cl.app_options().add_options()("input", po::value<std::string>(), "the input file");
    auto r = run(cl, {flag});
    CHECK(r.code == 0);
    CHECK(contains(r.out, "eddy-test: a test program"));
    CHECK(contains(r.out, "--runtime.batch-events-max"));
    CHECK(contains(r.out, "--input"));
    CHECK(r.err.empty());
  }
}

TEST_CASE("--help wins over bad values given with it") {
  // Range checks happen after --help; a syntax error in a flag is still an error.
  CHECK(run({"--help", "--runtime.batch-events-max=0"}).code == 0);
}

TEST_CASE("usage_error prints the program name and returns 2") {
  command_line cl{"eddy-test", "a test program"};
  capture err{std::cerr};
  CHECK(cl.usage_error("no input given") == 2);
  CHECK(contains(err.text(), "eddy-test: error: no input given"));
}

TEST_CASE("runtime_options validate accepts the defaults and the range limits") {
  runtime_options opts;
  CHECK_FALSE(opts.validate());
  opts.partitions = 4096;
  opts.batch_events_max = 1u << 20;
  opts.credit_batches_max = 1024;
  opts.linger_ms = 60000;
  CHECK_FALSE(opts.validate());
  opts.partitions = 1;
  opts.batch_events_max = 1;
  opts.credit_batches_max = 1;
  opts.linger_ms = 1;
  CHECK_FALSE(opts.validate());
}

TEST_CASE("runtime_options validate names the option that is out of range") {
  struct bad_case {
    void (*apply)(runtime_options&);
    std::string option;
  };
  std::vector<bad_case> cases{
    {[](runtime_options& o) { o.partitions = 0; }, "--job.partitions"},
    {[](runtime_options& o) { o.partitions = 4097; }, "--job.partitions"},
    {[](runtime_options& o) { o.batch_events_max = 0; }, "--runtime.batch-events-max"},
    {[](runtime_options& o) { o.batch_events_max = (1u << 20) + 1; }, "--runtime.batch-events-max"},
    {[](runtime_options& o) { o.credit_batches_max = 0; }, "--runtime.credit-batches-max"},
    {[](runtime_options& o) { o.credit_batches_max = 1025; }, "--runtime.credit-batches-max"},
    {[](runtime_options& o) { o.linger_ms = 0; }, "--runtime.linger-ms"},
    {[](runtime_options& o) { o.linger_ms = 60001; }, "--runtime.linger-ms"},
  };
  for (auto& c : cases) {
    CAPTURE(c.option);
    runtime_options opts;
    c.apply(opts);
    auto err = opts.validate();
    REQUIRE(err);
    CHECK(err.code() == static_cast<uint8_t>(eddy::errc::invalid_config));
    auto text = eddy::describe(err);
    CAPTURE(text);
    CHECK(text.rfind("invalid_config: " + c.option, 0) == 0);
  }
}

// A program that fills runtime_options itself (embedding, tests) gets the same bound on
// threads as the --runtime.threads flag.
TEST_CASE("runtime_options validate rejects more than 256 threads like the flag does") {
  runtime_options opts;
  opts.threads = 100000;
  CHECK(opts.validate());
}

TEST_CASE("cluster options: seeds are HOST:PORT items, the timeout outlasts the heartbeat") {
  command_line cl{"eddy-test", "a test program"};
  auto ok = run(cl, {"--node.seeds", "127.0.0.1:4711,10.0.0.2:4712", "--node.heartbeat-ms", "100",
                     "--node.timeout-ms", "900"});
  REQUIRE_MESSAGE(!ok.code.has_value(), ok.err);
  CHECK(cl.common.node_seeds == "127.0.0.1:4711,10.0.0.2:4712");
  CHECK(cl.common.heartbeat_ms == 100);
  CHECK(cl.common.heartbeat_timeout_ms == 900);
  for (const std::string bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":4711",
                                "127.0.0.1:47x1", "127.0.0.1:4711,"}) {
    CAPTURE(bad);
    auto r = run({"--node.seeds", bad});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "--node.seeds item"));
  }
  auto slow = run({"--node.heartbeat-ms", "1000", "--node.timeout-ms", "500"});
  CHECK(slow.code == 2);
  CHECK(contains(slow.err, "--node.timeout-ms (500) must be longer than --node.heartbeat-ms"));
}

TEST_CASE("parsing no flags gives the defaults of the default-constructed option structs") {
  command_line cl{"eddy-test", "a test program"};
  REQUIRE(run(cl, {}).code == std::nullopt);
  const eddy::common_options common;
  const runtime_options rt;
  CHECK(cl.common.data_dir == common.data_dir);
  CHECK(cl.common.node_host == common.node_host);
  CHECK(cl.common.node_port == common.node_port);
  CHECK(cl.common.heartbeat_ms == common.heartbeat_ms);
  CHECK(cl.common.heartbeat_timeout_ms == common.heartbeat_timeout_ms);
  CHECK(cl.common.standby_sync == common.standby_sync);
  CHECK(cl.common.moves_max == common.moves_max);
  CHECK(cl.common.rebalance_on_join == common.rebalance_on_join);
  CHECK(cl.common.inspect == common.inspect);
  CHECK(cl.common.http_host == common.http_host);
  CHECK(cl.common.http_port == common.http_port);
  CHECK(cl.common.log_level == common.log_level);
  CHECK(cl.runtime.threads == rt.threads);
  CHECK(cl.runtime.partitions == rt.partitions);
  CHECK(cl.runtime.batch_events_max == rt.batch_events_max);
  CHECK(cl.runtime.credit_batches_max == rt.credit_batches_max);
  CHECK(cl.runtime.linger_ms == rt.linger_ms);
  CHECK(cl.runtime.source_rate == rt.source_rate);
  CHECK(cl.runtime.state.level == rt.state.level);
  CHECK(cl.runtime.state.cache_mb == rt.state.cache_mb);
  CHECK(cl.runtime.state.keep_changes == rt.state.keep_changes);
  CHECK(cl.runtime.state.compact_every == rt.state.compact_every);
  CHECK(cl.runtime.state.commit_interval_ms == rt.state.commit_interval_ms);
  CHECK(cl.runtime.state.reset == rt.state.reset);
  CHECK(cl.runtime.supervision.restarts_max == rt.supervision.restarts_max);
  CHECK(cl.runtime.supervision.window_s == rt.supervision.window_s);
  CHECK(cl.runtime.supervision.backoff_ms == rt.supervision.backoff_ms);
  CHECK(cl.runtime.supervision.backoff_max_ms == rt.supervision.backoff_max_ms);
  CHECK(cl.runtime.supervision.poison_attempts == rt.supervision.poison_attempts);
}

TEST_CASE("--help shows every option's default") {
  auto r = run({"--help"});
  REQUIRE(r.code == 0);
  for (std::string shown : {"--data-dir arg (=./data)",
                            "--node.host arg (=127.0.0.1)",
                            "--node.port arg (=4710)",
                            "--node.heartbeat-ms arg (=500)",
                            "--node.timeout-ms arg (=3000)",
                            "--node.replication arg (=sync)",
                            "--node.max-moves arg (=1)",
                            "--node.rebalance arg (=on-join)",
                            "--http.host arg (=127.0.0.1)",
                            "--http.port arg (=8080)",
                            "--log.level arg (=info)",
                            "--job.partitions arg (=128)",
                            "--runtime.threads arg (=0)",
                            "--runtime.batch-events-max arg (=1024)",
                            "--runtime.credit-batches-max arg (=8)",
                            "--runtime.linger-ms arg (=5)",
                            "--runtime.source-rate arg (=0)",
                            "--state.durability arg (=process)",
                            "--state.cache-mb arg (=16)",
                            "--state.keep-changes arg (=4)",
                            "--state.compact-every arg (=1000)",
                            "--state.commit-interval-ms arg (=100)",
                            "--supervision.max-restarts arg (=5)",
                            "--supervision.window-s arg (=10)",
                            "--supervision.backoff-ms arg (=100)",
                            "--supervision.backoff-max-ms arg (=10000)",
                            "--supervision.poison-attempts arg (=3)"}) {
    CAPTURE(shown);
    CHECK(contains(r.out, shown));
  }
}

TEST_CASE("every numeric option accepts its limits and names its range when just outside") {
  struct range_case {
    std::string option;
    int64_t lo;
    int64_t hi;
    // Flags that keep the relations between options true at both limits.
    std::vector<std::string> with;
  };
  std::vector<range_case> cases{
    {"node.port", 0, 65535, {}},
    {"http.port", 0, 65535, {}},
    {"node.heartbeat-ms", 10, 600000, {"--node.timeout-ms=3600000"}},
    {"node.timeout-ms", 20, 3600000, {"--node.heartbeat-ms=10"}},
    {"node.max-moves", 1, 64, {}},
    {"job.partitions", 1, 4096, {}},
    {"runtime.threads", 0, 256, {}},
    {"runtime.batch-events-max", 1, 1048576, {}},
    {"runtime.credit-batches-max", 1, 1024, {}},
    {"runtime.linger-ms", 1, 60000, {}},
    {"runtime.source-rate", 0, int64_t{1} << 40, {}},
    {"state.cache-mb", 0, 1048576, {}},
    {"state.keep-changes", 1, 1048576, {}},
    {"state.compact-every", 1, 1073741824, {}},
    {"state.commit-interval-ms", 0, 600000, {}},
    {"supervision.max-restarts", 0, 1000, {}},
    {"supervision.window-s", 1, 86400, {}},
    {"supervision.backoff-ms", 0, 600000, {"--supervision.backoff-max-ms=600000"}},
    {"supervision.backoff-max-ms", 0, 600000, {"--supervision.backoff-ms=0"}},
    {"supervision.poison-attempts", 1, 100, {}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.option);
    auto flag = [&](int64_t v) {
      auto args = c.with;
      args.push_back("--" + c.option + "=" + std::to_string(v));
      return args;
    };
    for (auto limit : {c.lo, c.hi}) {
      auto ok = run(flag(limit));
      CHECK_MESSAGE(ok.code == std::nullopt, ok.err);
    }
    auto allowed = std::to_string(c.lo) + ".." + std::to_string(c.hi);
    for (auto outside : {c.lo - 1, c.hi + 1}) {
      auto bad = run(flag(outside));
      CHECK(bad.code == 2);
      CHECK(bad.err == "eddy-test: error: --" + c.option + " is " + std::to_string(outside) +
                         "; allowed: " + allowed + " (see --help)\n");
    }
  }
}

TEST_CASE("a choice option with an unknown value returns 2 and lists the allowed ones") {
  auto replication = run({"--node.replication=maybe"});
  CHECK(replication.code == 2);
  CHECK(replication.err ==
        "eddy-test: error: --node.replication is 'maybe'; allowed: sync, async (see --help)\n");
  auto rebalance = run({"--node.rebalance=never"});
  CHECK(rebalance.code == 2);
  CHECK(rebalance.err ==
        "eddy-test: error: --node.rebalance is 'never'; allowed: on-join, manual (see --help)\n");
  auto level = run({"--state.durability=disk"});
  CHECK(level.code == 2);
  CHECK(level.err == "eddy-test: error: --state.durability is 'disk'; allowed: none, process, "
                     "machine (see --help)\n");

  command_line cl{"eddy-test", "a test program"};
  REQUIRE(
    run(cl, {"--node.replication=async", "--node.rebalance=manual", "--state.durability=machine"})
      .code == std::nullopt);
  CHECK_FALSE(cl.common.standby_sync);
  CHECK_FALSE(cl.common.rebalance_on_join);
  CHECK(cl.runtime.state.level == eddy::durability::machine);
}

TEST_CASE("a number out of range is reported before a bad durability name") {
  auto r = run({"--state.durability=disk", "--node.port=70000"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "--node.port is 70000"));
}

TEST_CASE("supervision_options validate names the option that is out of range") {
  struct bad_case {
    void (*apply)(eddy::supervision_options&);
    std::string message;
  };
  std::vector<bad_case> cases{
    {[](eddy::supervision_options& o) { o.restarts_max = 1001; },
     "--supervision.max-restarts must be in 0..1000"},
    {[](eddy::supervision_options& o) { o.window_s = 0; },
     "--supervision.window-s must be in 1..86400"},
    {[](eddy::supervision_options& o) { o.window_s = 86401; },
     "--supervision.window-s must be in 1..86400"},
    {[](eddy::supervision_options& o) { o.backoff_max_ms = 600001; },
     "--supervision.backoff-ms must be at most --supervision.backoff-max-ms, both in 0..600000"},
    {[](eddy::supervision_options& o) { o.backoff_ms = 20000; },
     "--supervision.backoff-ms must be at most --supervision.backoff-max-ms, both in 0..600000"},
    {[](eddy::supervision_options& o) { o.poison_attempts = 0; },
     "--supervision.poison-attempts must be in 1..100"},
    {[](eddy::supervision_options& o) { o.poison_attempts = 101; },
     "--supervision.poison-attempts must be in 1..100"},
    {[](eddy::supervision_options& o) { o.policies = "count=retry"; },
     "--supervision.policy item 'count=retry' is not node=restart|stop|escalate"},
  };
  CHECK_FALSE(eddy::supervision_options{}.validate());
  for (auto& c : cases) {
    CAPTURE(c.message);
    eddy::supervision_options opts;
    c.apply(opts);
    auto err = opts.validate();
    REQUIRE(err);
    CHECK(eddy::describe(err) == "invalid_config: " + c.message);
  }
}

TEST_CASE("runtime_options validate gives the range in its message") {
  runtime_options opts;
  opts.threads = 257;
  CHECK(eddy::describe(opts.validate()) == "invalid_config: --runtime.threads must be in 0..256");
  opts = runtime_options{};
  opts.partitions = 0;
  CHECK(eddy::describe(opts.validate()) == "invalid_config: --job.partitions must be in 1..4096");
  opts = runtime_options{};
  opts.batch_events_max = 0;
  CHECK(eddy::describe(opts.validate()) ==
        "invalid_config: --runtime.batch-events-max must be in 1..1048576");
  opts = runtime_options{};
  opts.supervision.window_s = 0;
  CHECK(eddy::describe(opts.validate()) ==
        "invalid_config: --supervision.window-s must be in 1..86400");
}
