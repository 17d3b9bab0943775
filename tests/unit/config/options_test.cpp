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
