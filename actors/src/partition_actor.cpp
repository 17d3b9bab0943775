#include "transform_stage.hpp"

namespace eddy::detail {

stage_actor::behavior_type partition_stage(stage_actor::stateful_pointer<partition_state> self,
                                           std::shared_ptr<stage_init> init) {
  return transform_behavior(self, std::move(init));
}

} // namespace eddy::detail
