"""executor_node: the grasp-learning loop of one robot.

    heightmap -> propose_grasp(epsilon, that heightmap) -> backend.execute_grasp -> reward -> GraspExperience

Every executed attempt becomes one grasp_interfaces/GraspExperience on `/grasp/experience` (EXPERIENCE_QOS) with a
UUID4 id: the state (the heightmap the proposal was computed on), the action (pixel, rotation, pose), the reward
(1 for a held object, else 0) and either the next state (the first heightmap stamped after the backend returned,
so it shows the scene after the grasp with the arm parked) or terminal=true when the scene is reset or emptied.
The loop's rules come from the learning preset (`learning`, `learning_overrides`; grasp_core.learning), the same
ones the experiment harness runs: epsilon and the exploration mode (grasp_core.exploration), failed grasps on an
unchanged scene excluded from the next proposals (FailedGraspMemory), and the episode rule (grasp_core.episode:
terminal and reset when the workspace is empty or after `episode.reset_after_failures` failures in a row).

When every proposal is refused or fails (a model that only gives NaN, a heightmap the node cannot serve), the
loop says so loudly every `refusal_report_every` in a row, and once proposals have come back before (start-up,
while the learner builds its first model, only reports) it stops with an error after `max_refused_proposals`.

Backends (`backend` parameter): `sim` (the grasp_sim services) and `moveit` (grasp_execution.moveit_backend;
imported only when selected). The loop runs in a worker thread; the main thread spins the node, so service
responses and heightmaps keep arriving while the loop waits for them.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import traceback
import uuid
from dataclasses import dataclass

import rclpy
from grasp_core.episode import is_empty
from grasp_core.grasp_failure import GraspFailure
from grasp_core.exploration import FailedGraspMemory, epsilon_at
from grasp_core.learning import PRESETS, AttemptRules, LearningConfig, learning_config, parse_overrides
from grasp_interfaces.msg import GraspExperience, Heightmap
from grasp_interfaces.srv import ProposeGrasp
from grasp_ros.conversions import attempt_record, image_to_numpy, msg_to_heightmap, stamp_ns
from grasp_ros.params import ParameterError, declare_config, in_range, one_of, parameter, watch_live_parameters
from grasp_ros.qos import EXPERIENCE_QOS, LATEST_QOS, PROPOSE_SERVICE_QOS
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.duration import Duration
from rclpy.node import Node

from grasp_execution.attempt_log import AttemptLog
from grasp_execution.backend import GraspBackend, GraspOutcome
from grasp_execution.moveit_backend import PARAM_PREFIX, MoveItBackendConfig
from grasp_execution.service_call import ServerGone, ServiceUnavailable, call_service


@dataclass(frozen=True)
class ExecutorConfig:
    """The executor's parameters. Epsilon and the exploration and episode rules are not among them: they come from
    the learning preset (grasp_core.learning), the one the harness runs, so their defaults live there only."""

    backend: str = parameter("sim", "What executes grasps: sim (grasp_sim services) or moveit.",
                             check=one_of("sim", "moveit"), requirement="sim or moveit")
    heightmap_topic: str = parameter("grasp/heightmap", "Heightmap input topic.")
    propose_service: str = parameter("propose_grasp", "ProposeGrasp service.")
    experience_topic: str = parameter("/grasp/experience", "GraspExperience output topic (the learner's replay "
                                      "input).")
    execute_service: str = parameter("sim/execute_grasp", "sim backend: ExecuteGrasp.")
    reset_service: str = parameter("sim/reset", "sim backend: ResetScene.")
    reset_num_objects: int = parameter(0, "sim backend: objects per new scene (0: the simulator's setting).",
                                       check=in_range(0, 1000), requirement="0 <= reset_num_objects <= 1000")
    reset_object_set: str = parameter("", "sim backend: object set of new scenes ('': the simulator's setting).",
                                      check=one_of("", "train", "novel"), requirement="'', train or novel")
    max_attempts: int = parameter(0, "Stop after this many executed attempts (0: never).",
                                  check=in_range(0, 2**62), requirement="max_attempts >= 0")
    learning: str = parameter("default", "Learning preset (grasp_core.learning.PRESETS): the exploration and "
                              "episode rules of this loop; give the learner the same one.",
                              check=one_of(*PRESETS), requirement=f"one of {sorted(PRESETS)}")
    learning_overrides: str = parameter("", "Space-separated section.field=value overrides of the preset, e.g. "
                                        "'exploration.mode=uniform episode.reset_after_failures=5' (the same "
                                        "string as the learner's). Live: a new string applies from the next "
                                        "attempt.", live=True)
    epsilon_step_offset: int = parameter(0, "Attempts already made (resume the schedule after a restart).",
                                         check=in_range(0, 2**62), requirement="epsilon_step_offset >= 0")
    window: int = parameter(100, "Attempts in the running success rate G (seed: 100).",
                            check=in_range(1, 100000), requirement="1 <= window <= 100000")
    csv_path: str = parameter("", "Append every attempt to this CSV file and the .jsonl beside it "
                              "(grasp_core.attempts; '': none).")
    grasp_z_offset: float = parameter(0.0, "Added to the proposed grasp height before execution, metres.",
                                      check=in_range(-0.2, 0.2), requirement="-0.2 <= grasp_z_offset <= 0.2")
    heightmap_timeout: float = parameter(10.0, "Seconds to wait for a heightmap after a grasp before the attempt "
                                         "is closed as terminal.", check=in_range(0.1, 3600.0),
                                         requirement="0.1 <= heightmap_timeout <= 3600")
    propose_timeout: float = parameter(60.0, "Seconds to wait for a proposal.", check=in_range(0.1, 3600.0),
                                       requirement="0.1 <= propose_timeout <= 3600")
    execute_timeout: float = parameter(120.0, "sim backend: seconds per grasp/reset call.",
                                       check=in_range(0.1, 3600.0), requirement="0.1 <= execute_timeout <= 3600")
    service_wait: float = parameter(5.0, "Seconds to wait for a service server per try.",
                                    check=in_range(0.0, 3600.0), requirement="0 <= service_wait <= 3600")
    retry_delay: float = parameter(1.0, "Seconds to wait before retrying after a refused proposal/grasp or a "
                                   "failed reset.", check=in_range(0.0, 60.0), requirement="0 <= retry_delay <= 60")
    ack_timeout: float = parameter(5.0, "Seconds to wait for every experience subscriber (the learner) to "
                                   "acknowledge an experience before the next attempt.",
                                   check=in_range(0.0, 600.0), requirement="0 <= ack_timeout <= 600")
    source: str = parameter("", "Experience source name ('': the node's namespace).")
    max_refused_proposals: int = parameter(100, "Stop the loop with an error after this many proposals in a row "
                                           "were refused or failed, once one has come back (0: never).",
                                           check=in_range(0, 2**31), requirement="max_refused_proposals >= 0")
    refusal_report_every: int = parameter(10, "Log an error every this many proposals refused in a row.",
                                          check=in_range(1, 2**31), requirement="refusal_report_every >= 1")


class ExecutorNode(Node):
    def __init__(self, backend: GraspBackend | None = None, **kwargs):
        """`backend`: use this backend instead of the one the `backend` parameter names (tests)."""
        super().__init__("executor_node", **kwargs)
        self.config = declare_config(self, ExecutorConfig)
        self.moveit_config = declare_config(self, MoveItBackendConfig, PARAM_PREFIX)
        self.learning = self._learning_settings()
        self.source = self.config.source or self.get_namespace()
        watch_live_parameters(self, self._apply_live_parameter)  # `ros2 param set` on overrides
        self._init_loop_state()
        self.log = AttemptLog(self.config.window, self.config.csv_path or None)
        self.backend = backend if backend is not None else self._make_backend()
        self._connect()
        self._log_start()

    def _learning_settings(self):
        """The loop's rules: the learning preset with its overrides (grasp_core.learning)."""
        try:
            return learning_config(self.config.learning, parse_overrides(self.config.learning_overrides))
        except ValueError as e:
            raise ParameterError(f"learning / learning_overrides: {e}") from None

    def _init_loop_state(self) -> None:
        """Counters, the worker thread and the newest heightmap (filled by the subscription)."""
        self.attempts = 0
        self.refused = 0  # grasps the backend did not execute (refused, aborted), not counting the unplannable
        self.unplannable = 0  # proposals the backend could not plan: not executed, no experience, excluded next
        self.bad_heightmaps = 0
        self.rules: AttemptRules | None = None  # made when the first proposal says R and the resolution
        self.refused_in_a_row = 0  # proposals refused or failed since the last one that came back
        self.proposals_received = 0
        self.published: list[str] = []  # ids of the experiences sent
        self.error: str | None = None
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grasp_loop", daemon=True)
        self._heightmap_lock = threading.Condition()
        self._latest: Heightmap | None = None

    def _connect(self) -> None:
        """Heightmaps in, experiences out, the propose_grasp client."""
        config = self.config
        self.create_subscription(Heightmap, config.heightmap_topic, self._on_heightmap, LATEST_QOS)
        self.experience_pub = self.create_publisher(GraspExperience, config.experience_topic, EXPERIENCE_QOS)
        # The service's profile: every client hears every robot's responses (Fast DDS), so a deep queue.
        self._propose = self.create_client(ProposeGrasp, config.propose_service, qos_profile=PROPOSE_SERVICE_QOS)

    def _log_start(self) -> None:
        config = self.config
        self.get_logger().info(
            f"executor for '{self.source}' with the {self.backend.name} backend: heightmaps from "
            f"{self.resolve_topic_name(config.heightmap_topic)}, proposals from "
            f"{self.resolve_service_name(config.propose_service)}, experiences to "
            f"{self.resolve_topic_name(config.experience_topic)}; learning '{self.learning.name}' "
            f"({config.learning_overrides or 'no overrides'}): {self.learning.exploration.mode} exploration, epsilon "
            f"{self.epsilon():.3f} now; "
            f"{config.max_attempts or 'unlimited'} attempts")

    def _apply_live_parameter(self, name: str, value) -> None:
        """learning_overrides set live: checked, then used from the next attempt (ValueError refuses it)."""
        self.learning = learning_config(self.config.learning, parse_overrides(value))
        self.rules = None  # rebuilt with the new episode rule at the next attempt
        self.config = dataclasses.replace(self.config, learning_overrides=value)

    def _make_backend(self) -> GraspBackend:
        config = self.config
        if config.backend == "sim":
            from grasp_execution.sim_backend import SimServiceBackend
            return SimServiceBackend(self, config.execute_service, config.reset_service, config.execute_timeout,
                                     config.service_wait, config.reset_num_objects, config.reset_object_set)
        try:
            from grasp_execution.moveit_backend import create_moveit_backend
            return create_moveit_backend(self, self.moveit_config)
        except ImportError as e:
            raise ParameterError(f"backend 'moveit' needs moveit_py, moveit_configs_utils and ur_msgs (a ROS 2 "
                                 f"Jazzy install with MoveIt and ur_robot_driver): {e}") from None

    # ------------------------------------------------------------------------------------------------ lifetime
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._heightmap_lock:
            self._heightmap_lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def destroy_node(self):
        self.stop()
        self.backend.close()
        self.log.close()
        return super().destroy_node()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - report, then let main() exit
            if self._stop.is_set() and not self.context.ok():
                # Shut down while an attempt was being published: the context went first. Not a fault of the cell.
                self.get_logger().warning(f"grasp loop stopped by the shutdown after {self.attempts} attempts (an "
                                          f"attempt under way is not recorded): {type(e).__name__}: {e}")
                return
            self.error = f"{type(e).__name__}: {e}"
            self.get_logger().fatal(f"grasp loop stopped: {self.error}\n{traceback.format_exc()}")
        finally:
            self.done.set()

    # ------------------------------------------------------------------------------------------------ inputs
    def _on_heightmap(self, msg: Heightmap) -> None:
        try:
            msg_to_heightmap(msg)
        except ValueError as e:
            self.bad_heightmaps += 1
            self.get_logger().warning(f"ignored a bad heightmap ({self.bad_heightmaps} so far): {e}",
                                      throttle_duration_sec=10.0)
            return
        with self._heightmap_lock:
            if self._latest is None or stamp_ns(msg.header.stamp) >= stamp_ns(self._latest.header.stamp):
                self._latest = msg
                self._heightmap_lock.notify_all()

    def _wait_heightmap(self, after_ns: int, timeout: float) -> Heightmap | None:
        """The newest heightmap stamped after `after_ns`, waiting up to `timeout` s (None: timeout or stop)."""
        deadline = time.monotonic() + timeout
        with self._heightmap_lock:
            while not self._stop.is_set():
                latest = self._latest
                if latest is not None and stamp_ns(latest.header.stamp) > after_ns:
                    return latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._heightmap_lock.wait(min(remaining, 0.2))
        return None

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def epsilon(self) -> float:
        return float(epsilon_at(self.learning.exploration, self.config.epsilon_step_offset + self.attempts))

    def is_empty(self, heightmap: Heightmap) -> bool:
        """VPG's test (grasp_core.episode.is_empty)."""
        return is_empty(image_to_numpy(heightmap.depth, ("32FC1",)), heightmap.resolution, self.learning.episode)

    # ------------------------------------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        config = self.config
        state: Heightmap | None = None
        fresh_after = self._now_ns()
        while not self._stop.is_set() and (config.max_attempts == 0 or self.attempts < config.max_attempts):
            if self.backend.wait_until_ready(self._stop):  # e.g. the robot's program was not running
                fresh_after, state = self._now_ns(), None  # the scene may have changed meanwhile
                continue
            if state is None:
                state = self._wait_heightmap(fresh_after, config.heightmap_timeout)
                if state is None:
                    topic = self.resolve_topic_name(config.heightmap_topic)
                    self.get_logger().info(f"waiting for a heightmap on {topic}", throttle_duration_sec=10.0)
                    continue
                if self.is_empty(state):
                    self._reset_scene("the workspace is empty")
                    fresh_after, state = self._now_ns(), None
                    continue
            epsilon = self.epsilon()
            proposal = self._request_grasp(state, epsilon)
            if proposal is None:
                self._stop.wait(config.retry_delay)
                # Retry on the newest heightmap (the same one if nothing newer came).
                fresh_after, state = stamp_ns(state.header.stamp) - 1, None
                continue
            pose = proposal.pose
            pose.pose.position.z += config.grasp_z_offset
            outcome = self.backend.execute_grasp(pose, proposal.angle)
            done_ns = self._now_ns()
            if not outcome.executed:
                if outcome.failure_reason == GraspFailure.UNREACHABLE:
                    self._not_planned(state, proposal, outcome)
                else:
                    self.refused += 1
                    self.get_logger().error(f"grasp not executed ({self.refused} so far, no experience): "
                                            f"{outcome.message}")
                self._stop.wait(config.retry_delay)
                fresh_after, state = stamp_ns(state.header.stamp) - 1, None
                continue
            state = self._finish_attempt(state, proposal, pose, epsilon, outcome, done_ns)
            if state is None:
                fresh_after = self._now_ns()
        if not self._stop.is_set():
            self.get_logger().info(f"done: {self.attempts} attempts, G({self.log.window}) = "
                                   f"{self.log.window_success():.3f}, {sum(self.log.outcomes)} successes; not "
                                   f"executed: {self.unplannable} unplannable, {self.refused} refused or aborted")

    def _not_planned(self, state: Heightmap, proposal: ProposeGrasp.Response, outcome: GraspOutcome) -> None:
        """A proposal the robot cannot reach: no experience, no attempt (G and the replay never see it), counted
        apart and kept out of the next proposals on this scene (the failed-grasp memory), so a greedy policy moves
        on instead of proposing it again."""
        self.unplannable += 1
        if self.rules is None or self.rules.memory.num_rotations != int(proposal.num_rotations):
            self.rules = AttemptRules(self.learning, int(proposal.num_rotations), state.resolution)
        self.rules.memory.record(int(proposal.rotation_index), int(round(proposal.center_px[0])),
                                 int(round(proposal.center_px[1])), success=False, scene_changed=False)
        excluded = ("excluded from the next proposals on this scene" if self.learning.exploration.exclude_failed
                    else "not excluded (the preset's exploration.exclude_failed is off: it may be proposed again)")
        self.get_logger().warning(f"grasp not planned ({self.unplannable} so far; not executed, no experience; "
                                  f"{excluded}): {outcome.message}")

    def _request_grasp(self, state: Heightmap, epsilon: float) -> ProposeGrasp.Response | None:
        config = self.config
        request = propose_request(self.learning, epsilon, state, None if self.rules is None else self.rules.memory)
        try:
            response = call_service(self._propose, request, config.propose_timeout, config.service_wait)
        except ServerGone as e:  # noticed within seconds, not after propose_timeout
            self.get_logger().warning(f"propose_grasp: {e}; waiting for a server again")
            return None
        except ServiceUnavailable:
            self.get_logger().info(f"waiting for {self.resolve_service_name(config.propose_service)}",
                                   throttle_duration_sec=10.0)
            return None
        except (TimeoutError, RuntimeError) as e:
            self.get_logger().warning(f"propose_grasp failed: {e}")
            self._no_proposal(f"failed: {e}")
            return None
        if not response.success:
            self.get_logger().warning(f"propose_grasp refused: {response.message}", throttle_duration_sec=5.0)
            self._no_proposal(f"refused: {response.message}")
            return None
        self.refused_in_a_row = 0
        self.proposals_received += 1
        if response.pose.header.frame_id != state.header.frame_id:
            self.get_logger().error(f"propose_grasp answered in frame '{response.pose.header.frame_id}', not the "
                                    f"heightmap's '{state.header.frame_id}': ignored", throttle_duration_sec=5.0)
            return None
        return response

    def _no_proposal(self, why: str) -> None:
        """Count a proposal that did not come back; say so loudly, and stop the loop after too many in a row."""
        config = self.config
        self.refused_in_a_row += 1
        n, limit = self.refused_in_a_row, config.max_refused_proposals
        if not self.proposals_received:  # start-up: the first model may still be on its way
            limit = 0
        if limit and n >= limit:
            self.error = (f"{n} proposals in a row were refused or failed (max_refused_proposals = {limit}); "
                          f"the last one {why}. Nothing is being learned: check the affordance node's and the "
                          "learner's logs")
            self.get_logger().fatal(f"stopping the grasp loop: {self.error}")
            self._stop.set()
        elif n % config.refusal_report_every == 0:
            self.get_logger().error(f"{n} proposals in a row refused or failed, the last one {why}; the loop "
                                    + (f"stops after {limit}" if limit else "keeps trying (none has come back yet, "
                                       "or max_refused_proposals is 0)"))

    def _finish_attempt(self, state: Heightmap, proposal: ProposeGrasp.Response, pose, epsilon: float,
                        outcome: GraspOutcome, done_ns: int) -> Heightmap | None:
        """Reward, next state or terminal, experience, CSV, logs, reset. Returns the next state (None: wait)."""
        config = self.config
        reward = 1.0 if outcome.grasp_success else 0.0
        if self.rules is None or self.rules.memory.num_rotations != int(proposal.num_rotations):
            self.rules = AttemptRules(self.learning, int(proposal.num_rotations), state.resolution)
        limit = self.learning.episode.reset_after_failures
        next_state = None
        if outcome.objects_remaining != 0 and (limit == 0 or outcome.grasp_success
                                               or self.consecutive_failures + 1 < limit):
            next_state = self._wait_heightmap(done_ns, config.heightmap_timeout)
            if next_state is None and self._stop.is_set():
                # Shutting down (Ctrl-C, or the demo's end): the context may already be gone, so nothing can be
                # published. Say so rather than report a missing heightmap.
                self.get_logger().warning(
                    f"stopped during attempt {self.attempts + 1} ({'success' if reward else 'failure'}, "
                    f"{outcome.message}): the node is shutting down before its next heightmap came, so this "
                    "grasp is not recorded as an experience")
                return None
            if next_state is None:
                self.get_logger().error(f"attempt {self.attempts + 1}: no heightmap within "
                                        f"{config.heightmap_timeout} s after the grasp; closing it as terminal")
        self.attempts += 1
        next_depth = None if next_state is None else image_to_numpy(next_state.depth, ("32FC1",))
        decision = self.rules.after_attempt(int(proposal.rotation_index), int(round(proposal.center_px[0])),
                                            int(round(proposal.center_px[1])), bool(outcome.grasp_success),
                                            outcome.objects_remaining, image_to_numpy(state.depth, ("32FC1",)),
                                            next_depth)
        terminal_why, reset = (decision.why or None), decision.reset
        if decision.terminal:
            next_state = None
        terminal = terminal_why is not None
        experience = GraspExperience(
            id=str(uuid.uuid4()), source=self.source, attempt=self.attempts, heightmap=state,
            rotation_index=int(proposal.rotation_index), num_rotations=int(proposal.num_rotations),
            pixel_x=max(0, int(round(proposal.center_px[0]))), pixel_y=max(0, int(round(proposal.center_px[1]))),
            pose=pose, reward=reward, terminal=terminal,
            next_heightmap=next_state if next_state is not None else Heightmap(),
            model_version=int(proposal.model_version), epsilon=float(epsilon), explored=bool(proposal.explored),
            predicted_q=float(proposal.q_value), failure_reason=int(outcome.failure_reason))
        self.experience_pub.publish(experience)
        # Reliable QoS resends until acknowledged, but only while this process lives: wait for the learner's
        # acknowledgement so an executor stopped right after a grasp does not take the experience with it.
        if not self.experience_pub.wait_for_all_acked(Duration(seconds=config.ack_timeout)):
            self.get_logger().warning(f"experience {experience.id} not acknowledged by every subscriber within "
                                      f"{config.ack_timeout} s (is the learner running?)")
        self.published.append(experience.id)
        g = self.log.add(attempt_record(
            experience, angle=float(proposal.angle), message=outcome.message, scene_reset=reset,
            reset_why=terminal_why or "",
            objects_remaining=-1 if outcome.objects_remaining is None else int(outcome.objects_remaining)))
        recent = self.log.outcomes[-self.log.window:]
        self.get_logger().info(
            f"attempt {self.attempts}: {'SUCCESS' if reward else 'failure'} ({outcome.message}) at px "
            f"({experience.pixel_x}, {experience.pixel_y}) rot {experience.rotation_index}/"
            f"{experience.num_rotations}, eps {epsilon:.3f}{' explored' if experience.explored else ''}, "
            f"q {experience.predicted_q:.3f}, model v{experience.model_version} | G({self.log.window}) = {g:.3f} "
            f"({sum(recent)}/{len(recent)} recent)" + (f" | terminal: {terminal_why}" if terminal else ""))
        if reset:
            self._reset_scene(terminal_why)
        return next_state

    @property
    def consecutive_failures(self) -> int:
        return 0 if self.rules is None else self.rules.episode.consecutive_failures

    def _reset_scene(self, why: str) -> None:
        result = self.backend.reset()
        if self.rules is not None:
            self.rules.scene_was_reset()
        if result.success:
            self.get_logger().info(f"scene reset ({why}): {result.message}")
        else:
            self.get_logger().warning(f"scene not reset ({why}): {result.message}", throttle_duration_sec=30.0)
            self._stop.wait(self.config.retry_delay)


def propose_request(learning: LearningConfig, epsilon: float, heightmap: Heightmap,
                    memory: FailedGraspMemory | None = None) -> ProposeGrasp.Request:
    """The ProposeGrasp request of an attempt: `learning`'s exploration and action space (sent as "custom", so the
    executor chooses as its preset says whatever model is served) and, when the preset excludes failed grasps,
    those in `memory`."""
    exploration, actions = learning.exploration, learning.actions
    request = ProposeGrasp.Request(epsilon=epsilon, heightmap=heightmap, exploration_mode=exploration.mode,
                                   temperature=exploration.temperature, action_space="custom",
                                   object_mask=actions.object_mask, object_min_height=actions.min_height_m,
                                   edge_margin=actions.edge_margin_m, symmetric_q=actions.symmetric_q)
    if exploration.exclude_failed and memory is not None and memory.failed:
        rotations, us, vs = zip(*memory.failed)
        request.exclude_rotation_index, request.exclude_pixel_x, request.exclude_pixel_y = \
            list(rotations), list(us), list(vs)
        request.exclude_radius_px = float(memory.radius_px)
    return request


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = ExecutorNode()
    except ParameterError as e:
        rclpy.logging.get_logger("executor_node").fatal(str(e))
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.start()
    try:
        while rclpy.ok() and not node.done.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 1 if node.error else 0


if __name__ == "__main__":
    raise SystemExit(main())
