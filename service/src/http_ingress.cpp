#include "eddy/service/http_ingress.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "eddy/codec/json.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/flow/record.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/service/ingress_log.hpp"
#include "limits.hpp"
#include "worker_pool.hpp"

namespace eddy::service {

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// A client waiting for the answer to its request.
struct waiter {
  bool done = false;
  int status = 0;
  std::string body;
};

std::string error_body(const std::string& field, const std::string& message) {
  nlohmann::json j{{"error", message}};
  if (!field.empty()) {
    j["field"] = field;
  }
  return j.dump();
}

} // namespace

struct http_ingress::impl {
  ingress_options opts;
  httplib::Server server;
  std::thread serving;
  uint16_t port = 0;
  ingress_counters counters;

  std::mutex mtx;
  /// Signals the source that entries arrived, and the clients that answers did.
  std::condition_variable arrived;
  std::condition_variable answered;
  std::optional<ingress_log> log;
  std::map<uint64_t, std::shared_ptr<waiter>> pending;
  bool stopping = false;
  std::map<std::pair<std::string, int>, uint64_t> by_route;
  http_ingress::route_fn route;
  http_ingress::replicate_fn replicate;

  /// Keeps `seq` on the member that would lead next, with the entries before it that its
  /// copy lacks. Called with `mtx` held, so that copies get the entries in order.
  caf::error replicate_through(uint64_t seq, const std::string& body) {
    auto have = replicate({{seq, body}});
    if (have && *have + 1 < seq) {
      // A new copy (the member that would lead next changed): the log so far.
      auto missing = log->read_after(*have, seq - *have);
      if (!missing) {
        return missing.error();
      }
      have = replicate(*missing);
    }
    if (!have) {
      return have.error();
    }
    if (*have < seq) {
      return make_error(errc::io_failure, "the copy of the ingress log holds entries up to " +
                                            std::to_string(*have) + ", not " + std::to_string(seq));
    }
    return {};
  }

  void count(const std::string& route_name, int status) {
    std::lock_guard guard{mtx};
    ++by_route[{route_name, status}];
  }

  /// Logs `r` and waits for its answer.
  void accept(request r, httplib::Response& res) {
    auto w = std::make_shared<waiter>();
    std::unique_lock lock{mtx};
    if (stopping || pending.size() >= opts.pending_max) {
      lock.unlock();
      counters.overloaded.fetch_add(1, std::memory_order_relaxed);
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(error_body({}, stopping ? "the service is stopping"
                                              : "too many requests wait for an answer"),
                      "application/json");
      return;
    }
    // The request's id is its sequence number (the last one may have been written by this
    // node's host, keeping a copy of an earlier leader's log).
    auto next = log->next_seq();
    caf::expected<uint64_t> seq = next ? caf::expected<uint64_t>{0} : next.error();
    std::string log_text;
    if (next) {
      r.id = *next;
      log_text = nlohmann::json(r).dump();
      seq = log->append(log_text);
    }
    if (!seq) {
      lock.unlock();
      eddy::log(log_level::error, "http", describe(seq.error()));
      res.status = 500;
      res.set_content(error_body({}, "the request could not be logged: " + describe(seq.error())),
                      "application/json");
      return;
    }
    if (replicate) {
      if (auto err = replicate_through(*seq, log_text)) {
        // Logged here only: the source applies it, but a takeover may not; the client
        // retries with its Idempotency-Key and gets one answer either way.
        lock.unlock();
        eddy::log(log_level::warn, "http", describe(err));
        res.status = 503;
        res.set_header("Retry-After", "1");
        res.set_content(error_body({}, "the request is not durable on two members yet: " +
                                         describe(err) + "; retry with the same Idempotency-Key"),
                        "application/json");
        return;
      }
    }
    pending[*seq] = w;
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    arrived.notify_all();
    bool done = answered.wait_for(lock, std::chrono::milliseconds(opts.answer_timeout_ms),
                                  [&] { return w->done || stopping; });
    pending.erase(*seq);
    if (done && w->done) {
      res.status = w->status;
      res.set_content(w->body, "application/json");
      return;
    }
    lock.unlock();
    counters.timed_out.fetch_add(1, std::memory_order_relaxed);
    // Durable: it will be applied; the client may read the result later.
    res.status = 202;
    res.set_content(nlohmann::json{{"id", *seq}, {"accepted", true}}.dump(), "application/json");
  }

  /// Sends the request on to the leader at `where` (host:port) and passes its answer back.
  void forward(const std::string& where, const httplib::Request& req, httplib::Response& res) {
    auto colon = where.rfind(':');
    if (where.empty() || colon == std::string::npos) {
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(error_body({}, "no member leads the service now (no majority of the "
                                     "seeds is up, or a takeover is under way)"),
                      "application/json");
      return;
    }
    httplib::Client leader{where.substr(0, colon), std::stoi(where.substr(colon + 1))};
    leader.set_connection_timeout(limits::forward_connect_timeout);
    leader.set_read_timeout(std::chrono::milliseconds(opts.answer_timeout_ms) +
                            limits::forward_answer_slack);
    leader.set_tcp_nodelay(true);
    httplib::Headers headers;
    if (req.has_header("Idempotency-Key")) {
      headers.emplace("Idempotency-Key", req.get_header_value("Idempotency-Key"));
    }
    const char* type = "application/json";
    auto answer = req.method == "GET"    ? leader.Get(req.path, headers)
                  : req.method == "POST" ? leader.Post(req.path, headers, req.body, type)
                  : req.method == "PUT"  ? leader.Put(req.path, headers, req.body, type)
                                         : leader.Delete(req.path, headers, req.body, type);
    if (!answer) {
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(error_body({}, "the leader at " + where + " cannot be reached (" +
                                       httplib::to_string(answer.error()) +
                                       "); retry with the same Idempotency-Key"),
                      "application/json");
      return;
    }
    res.status = answer->status;
    if (answer->has_header("Retry-After")) {
      res.set_header("Retry-After", answer->get_header_value("Retry-After"));
    }
    res.set_content(answer->body, answer->get_header_value("Content-Type").c_str());
  }

  void complete(uint64_t id, int status, std::string body) {
    std::lock_guard guard{mtx};
    auto i = pending.find(id);
    if (i == pending.end()) {
      // Nobody waits: a replay after a restart, or the client gave up.
      return;
    }
    i->second->done = true;
    i->second->status = status;
    i->second->body = std::move(body);
    counters.answered.fetch_add(1, std::memory_order_relaxed);
    answered.notify_all();
  }
};

namespace {

/// Reads the accepted requests from the ingress log; the sequence number is the position.
class ingress_source final : public source_logic {
public:
  ingress_source(std::shared_ptr<http_ingress::impl> in, const instance_context& ctx)
    : in_(std::move(in))
    , producer_(ctx.producer) {}

  bool poll(record_buffer& out, size_t max) override {
    auto& dst = typed<request>(out).records;
    std::vector<std::pair<uint64_t, std::string>> rows;
    {
      std::unique_lock lock{in_->mtx};
      if (!in_->log || in_->log->last_seq() <= position_) {
        // Back to the actor's mailbox at least this often (stop, console requests).
        in_->arrived.wait_for(lock, limits::source_wait);
      }
      if (!in_->log) {
        return true;
      }
      auto read = in_->log->read_after(position_, max);
      if (!read) {
        throw std::runtime_error(describe(read.error()));
      }
      rows = std::move(*read);
    }
    std::string reason;
    for (auto& [seq, body] : rows) {
      position_ = seq;
      auto r = parse_json<request>(body, reason);
      if (!r) {
        throw std::runtime_error("ingress log entry " + std::to_string(seq) +
                                 " is not a request: " + reason);
      }
      dst.push_back(record<request>{std::move(*r), no_time, make_origin(producer_, seq)});
    }
    return true;
  }
  bool blocking() const noexcept override {
    return true;
  }
  std::string position() const override {
    return "ingress entry " + std::to_string(position_);
  }
  bool seek(uint64_t position) override {
    position_ = position;
    return true;
  }
  uint64_t read_position() const noexcept override {
    return position_;
  }
  bool replayable() const noexcept override {
    return producer_ != 0;
  }

private:
  std::shared_ptr<http_ingress::impl> in_;
  uint32_t producer_;
  uint64_t position_ = 0;
};

/// Answers the waiting clients, and appends the output lines (transactional).
class response_sink final : public line_sink_logic {
public:
  response_sink(std::shared_ptr<http_ingress::impl> in, const std::filesystem::path& output)
    : line_sink_logic(output, true)
    , in_(std::move(in)) {}

  void write(record_buffer& in) override {
    for (auto& r : typed<response>(in).records) {
      if (!r.value.output.empty()) {
        writer().write_line(r.value.output);
      }
      if (r.value.id != 0) {
        in_->complete(r.value.id, r.value.status, r.value.body.dump());
      }
    }
  }

private:
  std::shared_ptr<http_ingress::impl> in_;
};

} // namespace

http_ingress::http_ingress(ingress_options opts)
  : impl_(std::make_shared<impl>()) {
  impl_->opts = std::move(opts);
  auto& server = impl_->server;
  server.set_payload_max_length(impl_->opts.body_bytes_max);
  // Answers are small: without it, Nagle and delayed ACKs add 40 ms to each.
  server.set_tcp_nodelay(true);
  // A worker for every request that may wait for its answer, and a few more for the rest.
  server.new_task_queue = [workers = impl_->opts.pending_max + limits::spare_workers] {
    return new detail::worker_pool(workers);
  };
  server.set_error_handler([in = impl_.get()](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) {
      return;
    }
    std::string message =
      res.status == 404 ? "no route " + req.method + " " + req.path
      : res.status == 413
        ? "the body is over the limit of " + std::to_string(in->opts.body_bytes_max) + " bytes"
      : res.status == 400 ? "the request could not be read: a POST or PUT needs a Content-Length "
                            "(curl: -d '')"
                          : "HTTP " + std::to_string(res.status);
    res.set_content(error_body(res.status == 413 ? "body" : "", message), "application/json");
    in->count("-", res.status);
  });
}

http_ingress::~http_ingress() {
  stop();
}

namespace {

http_call call_of(const httplib::Request& req) {
  http_call call;
  for (size_t i = 1; i < req.matches.size(); ++i) {
    call.params.push_back(req.matches[i].str());
  }
  call.body = req.body;
  return call;
}

template <class Handler>
void add_route(httplib::Server& server, const std::string& method, const std::string& pattern,
               Handler handler) {
  if (method == "GET") {
    server.Get(pattern, handler);
  } else if (method == "POST") {
    server.Post(pattern, handler);
  } else if (method == "PUT") {
    server.Put(pattern, handler);
  } else if (method == "DELETE") {
    server.Delete(pattern, handler);
  } else {
    throw std::invalid_argument("http_ingress: unsupported method " + method);
  }
}

} // namespace

void http_ingress::route(const std::string& method, const std::string& pattern, std::string name,
                         parse_fn parse) {
  add_route(impl_->server, method, pattern,
            [in = impl_.get(), name = std::move(name),
             parse = std::move(parse)](const httplib::Request& req, httplib::Response& res) {
              request r;
              try {
                auto idem = req.get_header_value("Idempotency-Key");
                if (!idem.empty() && !valid_id(idem)) {
                  throw rejection{400, "Idempotency-Key",
                                  "Idempotency-Key must be 1 to 64 characters of [A-Za-z0-9_.-]"};
                }
                r = parse(call_of(req));
                r.idempotency_key = idem;
              } catch (const rejection& e) {
                in->counters.rejected.fetch_add(1, std::memory_order_relaxed);
                res.status = e.status;
                res.set_content(error_body(e.field, e.message), "application/json");
                in->count(name, res.status);
                return;
              }
              if (in->route) {
                if (auto where = in->route()) {
                  in->forward(*where, req, res);
                  in->count(name, res.status);
                  return;
                }
              }
              r.route = name;
              r.at_ms = now_ms();
              in->accept(std::move(r), res);
              in->count(name, res.status);
            });
}

void http_ingress::direct(const std::string& method, const std::string& pattern, direct_fn answer) {
  add_route(impl_->server, method, pattern,
            [answer = std::move(answer)](const httplib::Request& req, httplib::Response& res) {
              auto a = answer(call_of(req));
              res.status = a.status;
              res.set_content(a.body, a.content_type.c_str());
            });
}

void http_ingress::in_cluster(route_fn route, replicate_fn replicate) {
  impl_->route = std::move(route);
  impl_->replicate = std::move(replicate);
}

source_def<request> http_ingress::source() {
  return {[in = impl_](const instance_context& ctx) -> std::unique_ptr<source_logic> {
            return std::make_unique<ingress_source>(in, ctx);
          },
          1};
}

sink_def<response> http_ingress::responses(std::filesystem::path output) {
  return {[in = impl_, output](const instance_context&) -> std::unique_ptr<sink_logic> {
            return std::make_unique<response_sink>(in, output);
          },
          1};
}

caf::error http_ingress::start() {
  auto& in = *impl_;
  {
    auto log = ingress_log::open(in.opts.log_file, in.opts.level);
    if (!log) {
      return log.error();
    }
    std::lock_guard guard{in.mtx};
    in.log = std::move(*log);
  }
  if (in.opts.port == 0) {
    auto port = in.server.bind_to_any_port(in.opts.host);
    if (port <= 0) {
      return make_error(errc::invalid_config,
                        "cannot listen on " + in.opts.host + " (--http.host)");
    }
    in.port = static_cast<uint16_t>(port);
  } else if (!in.server.bind_to_port(in.opts.host, in.opts.port)) {
    return make_error(errc::invalid_config, "cannot listen on " + in.opts.host + ":" +
                                              std::to_string(in.opts.port) +
                                              " (--http.host, --http.port): in use?");
  } else {
    in.port = in.opts.port;
  }
  in.serving = std::thread{[&in] {
    in.server.listen_after_bind();
  }};
  {
    std::lock_guard guard{in.mtx};
    in.arrived.notify_all();
  }
  return {};
}

void http_ingress::stop() {
  auto& in = *impl_;
  {
    std::lock_guard guard{in.mtx};
    in.stopping = true;
    in.answered.notify_all();
  }
  in.server.stop();
  if (in.serving.joinable()) {
    in.serving.join();
  }
}

uint16_t http_ingress::port() const noexcept {
  return impl_->port;
}

const ingress_counters& http_ingress::counters() const noexcept {
  return impl_->counters;
}

std::string http_ingress::metrics_text() const {
  const auto& c = impl_->counters;
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t value) {
    out += std::string{"# HELP "} + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(value) + "\n";
  };
  counter("eddy_http_accepted_total", "Requests durable in the ingress log.", c.accepted);
  counter("eddy_http_answered_total", "Requests answered by the job.", c.answered);
  counter("eddy_http_timed_out_total", "Requests answered 202: the job did not answer in time.",
          c.timed_out);
  counter("eddy_http_rejected_total", "Requests refused as malformed (4xx).", c.rejected);
  counter("eddy_http_overloaded_total", "Requests refused with 503.", c.overloaded);
  out += "# HELP eddy_http_requests_total Requests by route and status.\n"
         "# TYPE eddy_http_requests_total counter\n";
  std::lock_guard guard{impl_->mtx};
  for (const auto& [k, n] : impl_->by_route) {
    out += "eddy_http_requests_total{route=\"" + k.first + "\",status=\"" +
           std::to_string(k.second) + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

bool valid_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string require_id(std::string_view s, const std::string& field) {
  if (!valid_id(s)) {
    throw rejection{400, field, field + " must be 1 to 64 characters of [A-Za-z0-9_.-]"};
  }
  return std::string{s};
}

body_fields::body_fields(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    doc_ = nlohmann::json::object();
    return;
  }
  doc_ = nlohmann::json::parse(body, nullptr, false);
  if (doc_.is_discarded()) {
    throw rejection{400, "body", "the body is not valid JSON"};
  }
  if (!doc_.is_object()) {
    throw rejection{400, "body", "the body must be a JSON object"};
  }
}

int64_t body_fields::integer(const std::string& field, int64_t lo, int64_t hi) const {
  auto i = doc_.find(field);
  if (i == doc_.end()) {
    throw rejection{400, field, "missing field " + field};
  }
  if (!i->is_number_integer()) {
    throw rejection{400, field, field + " must be an integer"};
  }
  auto v = i->get<int64_t>();
  if (i->is_number_unsigned() && i->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    v = INT64_MAX;
  }
  if (v < lo || v > hi) {
    throw rejection{400, field,
                    field + " must be in " + std::to_string(lo) + ".." + std::to_string(hi)};
  }
  return v;
}

int64_t body_fields::integer_or(const std::string& field, int64_t lo, int64_t hi,
                                int64_t fallback) const {
  return doc_.contains(field) ? integer(field, lo, hi) : fallback;
}

std::string body_fields::id(const std::string& field) const {
  auto i = doc_.find(field);
  if (i == doc_.end()) {
    throw rejection{400, field, "missing field " + field};
  }
  if (!i->is_string()) {
    throw rejection{400, field, field + " must be a string"};
  }
  return require_id(i->get<std::string>(), field);
}

} // namespace eddy::service
