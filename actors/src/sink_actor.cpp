#include "stage.hpp"

namespace eddy::detail {

stage_actor::behavior_type sink_stage(stage_actor::stateful_pointer<sink_state> self,
                                      std::shared_ptr<stage_init> init) {
  auto& st = self->state;
  st.init = init;
  install_exception_handler(self, *init);
  st.logic = std::move(init->sink);
  st.in = std::make_unique<inputs>(init->input_count);
  return {
    [self](batch& b) {
      auto& st = self->state;
      auto* ch = st.in->admit(self, b, *st.init->metrics);
      if (ch == nullptr) {
        return;
      }
      if (b.size() > 0) {
        st.logic->write(*b.records);
      }
      st.in->consumed(self, b.channel, *ch, false, std::move(b.records));
      if (b.last) {
        st.in->mark_finished();
        if (st.in->all_finished()) {
          st.logic->flush();
          st.init->metrics->status = 1;
          self->quit();
        }
      }
    },
    [](credit_atom, channel_id, uint32_t, recycled_buffer&) {},
    [](start_atom) {},
    [](stop_atom) {},
    [](tick_atom) {},
    [](pull_atom) {},
  };
}

} // namespace eddy::detail
