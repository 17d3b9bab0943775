#include "stage/transform_stage.hpp"

namespace eddy::detail {

stage_actor::behavior_type operator_stage(stage_actor::stateful_pointer<operator_state> self,
                                          std::shared_ptr<stage_init> init) {
  return transform_behavior(self, std::move(init));
}

} // namespace eddy::detail
