"""affordance_node: holds the grasp Q network and serves `propose_grasp`.

Messages in (a heightmap: the request's, else the latest on `grasp/heightmap`), `grasp_core` calls (Q maps of
every rotation, epsilon-greedy choice in the action space the model was trained for, recorded in its checkpoint,
unless the request's `action_space` names another), messages out (the pose in the heightmap's base frame, plus
RViz views: `grasp/affordance` Image, `grasp/proposal_markers` MarkerArray, `grasp/affordance_cloud` PointCloud2).

New models announced by the learner on `/grasp/model` are loaded in their own callback group, outside the model
lock, checked (metadata field by field, finite weights, finite Q maps on the latest heightmap) and swapped in
whole; a file that fails any of that is logged and the old model stays. Bad requests get `success = false` and a
message saying why (too large, depth outside [0, z_max - z_min], ...); the node keeps serving. A request that
waited longer than `max_queue_seconds` for the model is refused without inference: its client has given up.

Requests that wait for the model together (several robots share the node) run through the network as one batch
of up to `max_batch` (grasp_affordance.model_holder.propose_many): one predict over their heightmaps, then each
request's own choice, in arrival order, with the same Q maps and random draws as one after another.

Every request gets an answer. The service callback is a coroutine: it hands the request to a worker thread and
frees the executor at once, so each request is taken as it arrives instead of waiting in DDS's bounded queue (where
a burst overwrote requests nobody saw). Beyond `max_waiting_requests` in flight a request is refused at once ("busy,
retry"). On Ctrl-C / SIGTERM (`drain`) the node refuses new and still-queued requests, finishes the batch under
way and sends every answer before it exits.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from grasp_interfaces.msg import Heightmap, ModelVersion
from grasp_interfaces.srv import ProposeGrasp
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import Executor, MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from grasp_affordance.model_holder import (GraspProposal, GraspRequest, LoadedModel, load_checkpoint_model,
                                           propose_many, untrained_model, vet_model)
from grasp_affordance.visualization import affordance_colors, affordance_grid, affordance_image, grasp_markers, \
    heightmap_points, point_cloud
from grasp_core.action_space import ActionSpaceConfig
from grasp_core.checkpoint import ACTION_SPACE_RECORDED
from grasp_core.exploration import EXPLORATION_MODES, FailedGraspMemory, check_epsilon
from grasp_core.learning import PRESETS
from grasp_core.profiles import PROFILES
from grasp_core.workspace import WorkspaceLimits
from grasp_ros.conversions import check_heightmap_size, is_empty_heightmap, msg_to_heightmap, numpy_to_image
from grasp_ros.node_main import spin_node
from grasp_ros.params import declare_config, in_range, one_of, parameter, watch_live_parameters
from grasp_ros.qos import (LATEST_QOS, MODEL_QOS, PROPOSE_SERVICE_QOS, SENSOR_QOS, SERVICE_INTROSPECTION_CHOICES,
                           configure_service_events)

READY_MESSAGE = "affordance node ready"
NO_STATS = {"served": 0, "failed": 0, "seconds": 0.0, "batches": 0, "batched": 0}  # the 10 s log's counters
STOPPING_MESSAGE = ("the affordance node is shutting down: not computed; send the request again when it (or another "
                    "server) is back")
DRAIN_GRACE_SECONDS = 0.2  # after the last answer is made, spin this long so its task sends it


@dataclass(frozen=True)
class AffordanceConfig:
    """The affordance node's parameters (how a grasp is chosen: the model's own action space, recorded in its
    checkpoint, unless a request asks for another; exploration and exclusions come with each request)."""

    model_path: str = parameter("", "Checkpoint (.safetensors) to load at start; '' = wait for the learner's "
                                "announcement on the model topic. Setting it live loads that file.", live=True)
    profile: str = parameter("fast", "Profile of the untrained model built when allow_untrained is true and no "
                             "checkpoint is given.", check=one_of(*PROFILES), requirement=f"one of {sorted(PROFILES)}")
    allow_untrained: bool = parameter(False, "Serve a randomly initialised model until a checkpoint arrives (tests "
                                      "and dry runs only).")
    base_frame: str = parameter("world", "The workspace frame (robot base) every heightmap must be in: the heightmap "
                                "node's base_frame (world in simulation, base_link on the real UR3). A heightmap "
                                "in another frame is refused: the pose would be labelled in a frame the robot does "
                                "not plan in.", check=bool, requirement="a non-empty frame name")
    heightmap_topic: str = parameter("grasp/heightmap", "Heightmap topic (latest one is used when a request carries "
                                     "no heightmap).", check=bool, requirement="a non-empty topic name")
    model_topic: str = parameter("/grasp/model", "Where the learner announces checkpoints.", check=bool,
                                 requirement="a non-empty topic name")
    jaw_width: float = parameter(0.085, "Jaw opening drawn in the markers and images, metres.",
                                 check=in_range(0.005, 0.5), requirement="0.005 <= jaw_width <= 0.5")
    publish_visualization: bool = parameter(True, "Publish the affordance image, markers and point cloud (only when "
                                            "someone subscribes).")
    seed: int = parameter(0, "Seed of the exploration random stream (and of an untrained model).")
    torch_threads: int = parameter(0, "torch intra-op threads; 0 = torch's default.", check=in_range(0, 256),
                                   requirement="0 <= torch_threads <= 256")
    service_introspection: str = parameter("contents", "Publish every proposal (request and response) on "
                                           "propose_grasp/_service_event for bags and viewers: off, metadata or "
                                           "contents.", check=one_of(*SERVICE_INTROSPECTION_CHOICES),
                                           requirement=" or ".join(SERVICE_INTROSPECTION_CHOICES))
    warmup: bool = parameter(True, "Run one inference right after loading the first model, so the first request is "
                             "not slowed down by lazy initialisation.")
    max_heightmap_pixels: int = parameter(512 * 512, "Largest heightmap served, in pixels (refused before any work; "
                                          "the paper profile uses 224x224).", check=in_range(64, 4096 * 4096),
                                          requirement="64 <= pixels <= 4096^2")
    max_queue_seconds: float = parameter(60.0, "Refuse, without inference, a request that waited longer than this "
                                         "for the model (its client has given up; the executor's propose_timeout "
                                         "is 60 s). 0 = never.", check=in_range(0.0, 3600.0),
                                         requirement="0 <= max_queue_seconds <= 3600")
    max_batch: int = parameter(4, "Most requests waiting for the model that run through the network together (one "
                               "predict over their heightmaps; each still gets its own choice, the same as alone). "
                               "1 = one request at a time.", check=in_range(1, 64), requirement="1 <= max_batch <= 64")
    max_excluded_grasps: int = parameter(1000, "Most excluded grasps (exclude_* entries) a request may carry; more are "
                                         "refused before any work (each costs a pass over the heightmap; an "
                                         "executor sends only the failures on its unchanged scene).",
                                         check=in_range(0, 1_000_000), requirement="0 <= max_excluded_grasps <= 10^6")
    max_waiting_requests: int = parameter(32, "Most /propose_grasp requests in the node at once (waiting for the model "
                                          "or being computed); one more is refused at once with 'busy, retry', so "
                                          "no request waits unseen in a queue until its client gives up.",
                                          check=in_range(1, 1024), requirement="1 <= max_waiting_requests <= 1024")


@dataclass
class _Waiting:
    """A decoded request waiting for the model; `done` (with `result` or `error`) once its batch has run."""

    request: ProposeGrasp.Request
    color: np.ndarray
    depth: np.ndarray
    workspace: WorkspaceLimits
    received: float  # time.perf_counter() when the call arrived
    done: bool = False
    result: tuple[GraspProposal, LoadedModel] | None = None
    error: Exception | None = None


class _Finished:
    """Awaited in an rclpy task: yields until `future` (a worker thread's) is done, then returns its result. rclpy
    resumes a yielded task whenever its executor wakes; the future's done callback wakes it."""

    def __init__(self, future: Future):
        self.future = future

    def __await__(self):
        while not self.future.done():
            yield
        return self.future.result()


class AffordanceNode(Node):
    def __init__(self, **kwargs):
        super().__init__("affordance_node", **kwargs)
        self.config = config = declare_config(self, AffordanceConfig)
        if config.torch_threads > 0:
            torch.set_num_threads(int(config.torch_threads))

        self._model: LoadedModel | None = None
        self._model_lock = threading.Lock()  # guards _model, inference and _rng
        self._waiting: list[_Waiting] = []  # decoded requests in arrival order (see _run_batch)
        self._waiting_lock = threading.Lock()
        self._rng = np.random.default_rng(config.seed)
        self._latest_heightmap: Heightmap | None = None
        self._stats_lock = threading.Lock()
        self._stats = dict(NO_STATS)

        # Service calls may run concurrently (decoding, responses); inference itself is serialised by the lock.
        self._service_group = ReentrantCallbackGroup()
        self._model_group = MutuallyExclusiveCallbackGroup()
        self._topic_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Heightmap, config.heightmap_topic, self._on_heightmap, LATEST_QOS,
                                 callback_group=self._topic_group)
        self.create_subscription(ModelVersion, config.model_topic, self._on_model, MODEL_QOS,
                                 callback_group=self._model_group)
        self._image_pub = self.create_publisher(Image, "grasp/affordance", SENSOR_QOS)
        self._marker_pub = self.create_publisher(MarkerArray, "grasp/proposal_markers", SENSOR_QOS)
        self._cloud_pub = self.create_publisher(PointCloud2, "grasp/affordance_cloud", SENSOR_QOS)
        self._grid_pub = self.create_publisher(Image, "grasp/affordance_grid", SENSOR_QOS)  # all rotations
        self._admission_lock = threading.Lock()  # guards _in_flight and _stopping
        self._in_flight = 0  # requests taken by the service and not answered yet
        self._stopping = False
        self._workers = ThreadPoolExecutor(max_workers=config.max_waiting_requests, thread_name_prefix="propose")
        self._service = self.create_service(ProposeGrasp, "propose_grasp", self._serve_propose,
                                            qos_profile=PROPOSE_SERVICE_QOS, callback_group=self._service_group)
        configure_service_events(self, self._service, config.service_introspection)
        self.create_timer(10.0, self._log_stats, callback_group=self._topic_group)

        if config.model_path:
            self._load_and_swap(config.model_path, version=None, why="model_path parameter")
        if self._model is None and config.allow_untrained:
            self._swap(untrained_model(config.profile, seed=config.seed), why="allow_untrained (random init)")
        if self._model is None:
            self.get_logger().info(f"no model yet: waiting for an announcement on {config.model_topic}")
        watch_live_parameters(self, self._apply_live_parameter)  # `ros2 param set ... model_path <file>`
        service = self.resolve_service_name(self._service.srv_name)
        self.get_logger().info(f"{READY_MESSAGE}: serving {service}, heightmaps from "
                               f"{self.resolve_topic_name(config.heightmap_topic)}")

    # ------------------------------------------------------------------------------------------------ model
    def _swap(self, model: LoadedModel, why: str, warmed: bool = False) -> None:
        """`warmed`: an inference already ran on this model (the finite-Q check), so no warm-up is needed."""
        if self.config.warmup and self._model is None and not warmed:  # lazy initialisation, once per process
            self._warm_up(model)
        with self._model_lock:
            old = self._model
            self._model = model
        self.get_logger().info(f"model loaded ({why}): {model.describe()}"
                               + (f" (replaces version {old.version})" if old is not None else ""))
        if model.actions_source != ACTION_SPACE_RECORDED:
            self.get_logger().warning(f"model version {model.version}: requests with action_space '' get "
                                      f"{model.actions.describe()}: {model.actions_source}")

    def _warm_up(self, model: LoadedModel) -> None:
        side = int(round(0.448 / model.resolution)) if model.resolution else 64
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.network.predict(np.zeros((side, side, 3), np.uint8), np.zeros((side, side), np.float32),
                                  model.options)
        self.get_logger().debug(f"warm-up inference {1e3 * (time.perf_counter() - t0):.0f} ms")

    def _load_and_swap(self, path: str, version: int | None, why: str, announced: ModelVersion | None = None
                       ) -> bool:
        """Load outside the lock, check against the announcement, swap; on any failure keep the old model."""
        t0 = time.perf_counter()
        try:
            model = load_checkpoint_model(path, version)
            if announced is not None:
                if announced.trunk and announced.trunk != model.trunk:
                    raise ValueError(f"announced trunk {announced.trunk!r} but the file holds {model.trunk!r}")
                if announced.num_rotations and announced.num_rotations != model.num_rotations:
                    raise ValueError(f"announced {announced.num_rotations} rotations but the file holds "
                                     f"{model.num_rotations}")
            probed = vet_model(model, *self._probe_heightmap())  # NaN/inf weights or Q: refused, never swapped in
        except Exception as e:  # noqa: BLE001 - no file may take the node down (ValueError = the file's fault)
            current = self._model
            keep = f"keeping model version {current.version}" if current else "still no model"
            kind = "" if isinstance(e, (OSError, ValueError, RuntimeError)) else "internal error: "
            self.get_logger().error(f"cannot load checkpoint {path} ({why}): {kind}{type(e).__name__}: {e}; {keep}")
            return False
        self._swap(model, f"{why}, read and checked in {time.perf_counter() - t0:.2f} s, finite Q on {probed}",
                   warmed=True)
        return True

    def _probe_heightmap(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """The latest heightmap (to check a new model on), or (None, None) if there is none usable."""
        msg = self._latest_heightmap
        if msg is None:
            return None, None
        try:
            check_heightmap_size(msg, self.config.max_heightmap_pixels)
            color, depth, _ = msg_to_heightmap(msg)
        except ValueError:
            return None, None
        return color, depth

    def _apply_live_parameter(self, name: str, value) -> None:
        """model_path set live: load and check that checkpoint now, as an announced one (a file that does not load,
        or whose weights or Q are not finite, is refused with the reason in the SetParameters result; the model
        stays)."""
        if not value:
            raise ValueError("give a checkpoint file; an empty model_path cannot unload the model")
        t0 = time.perf_counter()
        try:
            model = load_checkpoint_model(value, None)
            probed = vet_model(model, *self._probe_heightmap())  # NaN/inf weights or Q: refused, never swapped in
        except (OSError, ValueError, RuntimeError) as e:
            self.get_logger().error(f"model_path {value} set live refused: {type(e).__name__}: {e}; the current "
                                    "model stays")
            raise ValueError(f"cannot load it ({type(e).__name__}: {e}); the current model stays") from None
        self._swap(model, f"model_path parameter set live, read and checked in {time.perf_counter() - t0:.2f} s, "
                   f"finite Q on {probed}", warmed=True)
        self.config = dataclasses.replace(self.config, model_path=value)

    def _on_model(self, msg: ModelVersion) -> None:
        current = self._model
        if current is not None and current.version == msg.version and current.path == msg.path:
            return  # the transient-local copy of what we already have
        self.get_logger().info(f"learner announced model version {msg.version} ({msg.updates} updates, "
                               f"{msg.experiences} experiences): {msg.path}")
        if current is not None and msg.version < current.version:
            self.get_logger().warning(f"version {msg.version} is older than the loaded {current.version}: the "
                                      "learner restarted from an earlier checkpoint; following it")
        self._load_and_swap(msg.path, msg.version, f"announced version {msg.version}", announced=msg)

    @property
    def model_version(self) -> int | None:
        model = self._model
        return None if model is None else model.version

    # ------------------------------------------------------------------------------------------------ inputs
    def _on_heightmap(self, msg: Heightmap) -> None:
        if self._latest_heightmap is None:
            self.get_logger().info(f"first heightmap received ({msg.depth.width}x{msg.depth.height}, frame "
                                   f"'{msg.header.frame_id}')")
        if msg.header.frame_id != self.config.base_frame:
            self.get_logger().warning(f"heightmaps on {self.resolve_topic_name(self.config.heightmap_topic)} are in "
                                      f"frame '{msg.header.frame_id}', not base_frame '{self.config.base_frame}': "
                                      "requests without their own heightmap are refused",
                                      throttle_duration_sec=60.0)
        self._latest_heightmap = msg

    # ------------------------------------------------------------------------------------------------ service
    async def _serve_propose(self, request: ProposeGrasp.Request, response: ProposeGrasp.Response
                             ) -> ProposeGrasp.Response:
        """The service's callback. rclpy awaits it, so the executor thread is free at once and takes the next
        request as it arrives: none waits in DDS's bounded queue, where a burst overwrote requests nobody saw. The
        request runs in a worker thread (`_on_propose`: decode, wait for the model, choose); beyond
        `max_waiting_requests` in flight, or once the node is stopping, it is refused at once."""
        t0 = time.perf_counter()
        with self._admission_lock:
            refusal = STOPPING_MESSAGE if self._stopping else None
            if refusal is None and self._in_flight >= self.config.max_waiting_requests:
                refusal = (f"busy: {self._in_flight} requests are already waiting for the model "
                           f"(max_waiting_requests = {self.config.max_waiting_requests}); not queued, retry in a "
                           "moment")
            if refusal is None:
                self._in_flight += 1
        if refusal is not None:
            response.success, response.message = False, refusal
            self.get_logger().warning(f"propose_grasp refused: {refusal}", throttle_duration_sec=5.0)
            self._count(t0, failed=True)
            return response
        try:
            future = self._workers.submit(self._on_propose, request, response)
            future.add_done_callback(self._wake_executor)
            return await _Finished(future)
        finally:  # the task that made the answer sends it right after this
            with self._admission_lock:
                self._in_flight -= 1

    def _wake_executor(self, _future=None) -> None:
        executor = self.executor
        try:
            if executor is not None:
                executor.wake()
        except Exception:  # noqa: BLE001 - the executor is being shut down: nobody left to wake
            pass

    def drain(self, executor: Executor, timeout: float = 30.0) -> None:
        """Before the node stops (Ctrl-C, SIGTERM; spin_node calls this with the context still valid): refuse new
        requests and those still waiting for the model, let the batch under way finish, and spin `executor` until
        every request taken has been answered, so no caller waits out its timeout for a node that is gone."""
        with self._admission_lock:
            self._stopping = True
            taken = self._in_flight
        with self._waiting_lock:
            queued = list(self._waiting)
            del self._waiting[:]
        for item in queued:  # their threads see `done` as soon as the batch under way frees the model
            item.error = ValueError(STOPPING_MESSAGE)
            item.done = True
        self.get_logger().info(f"stopping: answering the {taken} requests taken ({len(queued)} of them refused "
                               "without inference) before exiting")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._admission_lock:
                if self._in_flight == 0:
                    break
            executor.spin_once(timeout_sec=0.05)
        grace = time.monotonic() + DRAIN_GRACE_SECONDS
        while time.monotonic() < grace:
            executor.spin_once(timeout_sec=0.05)
        self._workers.shutdown(wait=False)
        if self._in_flight:
            self.get_logger().error(f"stopping after {timeout:g} s with {self._in_flight} requests unanswered")

    def destroy_node(self) -> None:
        self._workers.shutdown(wait=False)
        super().destroy_node()

    def _on_propose(self, request: ProposeGrasp.Request, response: ProposeGrasp.Response) -> ProposeGrasp.Response:
        t0 = time.perf_counter()
        try:
            proposal, heightmap, model, color = self._propose(request, t0)
        except Exception as e:  # noqa: BLE001 - every failure becomes an unsuccessful response, never a crash
            response.success = False
            if isinstance(e, ValueError):
                response.message = str(e)
                self.get_logger().warning(f"propose_grasp refused: {e}")
            else:
                response.message = f"internal error while proposing a grasp: {type(e).__name__}: {e}"
                self.get_logger().error(response.message)
            self._count(t0, failed=True)
            return response
        response.success = True
        response.message = (f"{'explored' if proposal.explored else 'greedy'} grasp at pixel ({proposal.u}, "
                            f"{proposal.v}), rotation {proposal.rotation_index}/{proposal.num_rotations}")
        response.pose.header = heightmap.header
        pos, quat = response.pose.pose.position, response.pose.pose.orientation
        pos.x, pos.y, pos.z = proposal.position
        quat.x, quat.y, quat.z, quat.w = proposal.orientation
        response.angle = proposal.angle
        response.q_value = proposal.q_value
        response.center_px = [float(proposal.u), float(proposal.v)]
        response.rotation_index = proposal.rotation_index
        response.num_rotations = proposal.num_rotations
        response.explored = proposal.explored
        response.heightmap_stamp = heightmap.header.stamp
        response.model_version = model.version
        self._count(t0, failed=False)
        self.get_logger().debug(f"propose_grasp: {response.message}, q={proposal.q_value:.3f}, model "
                                f"v{model.version}, {1e3 * (time.perf_counter() - t0):.0f} ms")
        if self.config.publish_visualization:
            try:
                self._publish_views(proposal, heightmap, color, model)
            except Exception as e:  # a view must never cost a proposal
                self.get_logger().error(f"could not publish the affordance views: {type(e).__name__}: {e}")
        return response

    def _propose(self, request: ProposeGrasp.Request, received: float):
        model = self._model
        if model is None:
            raise ValueError(f"no model loaded yet: waiting for the learner's announcement on "
                             f"{self.config.model_topic} (or set model_path, or allow_untrained for tests)")
        if is_empty_heightmap(request.heightmap):
            heightmap = self._latest_heightmap
            if heightmap is None:
                raise ValueError(f"no heightmap: the request has none and none has arrived on "
                                 f"{self.resolve_topic_name(self.config.heightmap_topic)} yet")
        else:
            heightmap = request.heightmap
        check_epsilon(request.epsilon)
        excluded = len(request.exclude_rotation_index)
        if excluded > self.config.max_excluded_grasps:  # before any work: each entry costs a pass over the map
            raise ValueError(f"{excluded} excluded grasps, more than max_excluded_grasps = "
                             f"{self.config.max_excluded_grasps}: send only the grasps that failed on the current "
                             "scene (or raise the node's max_excluded_grasps)")
        try:
            check_heightmap_size(heightmap, self.config.max_heightmap_pixels)  # before any work
            color, depth, workspace = msg_to_heightmap(heightmap)
        except ValueError as e:
            raise ValueError(f"bad heightmap: {e}") from None
        if not heightmap.header.frame_id:
            raise ValueError("bad heightmap: header.frame_id is empty, so the grasp pose would have no frame")
        if heightmap.header.frame_id != self.config.base_frame:
            raise ValueError(f"bad heightmap: header.frame_id is {heightmap.header.frame_id!r}, not the workspace "
                             f"frame {self.config.base_frame!r} (parameter base_frame): make the heightmap in "
                             "that frame (the heightmap node's base_frame), or give this node the right base_frame")
        if model.resolution is not None and not math.isclose(workspace.resolution, model.resolution, rel_tol=0.01):
            self.get_logger().warning(f"heightmap resolution {workspace.resolution} m/px differs from the model "
                                      f"profile's {model.resolution} m/px: grasps may be poor",
                                      throttle_duration_sec=60.0)
        waiting = _Waiting(request, color, depth, workspace, received)
        with self._waiting_lock:
            self._waiting.append(waiting)
        with self._model_lock:
            while not waiting.done:  # another call's batch may have taken it already
                self._run_batch()
        if waiting.error is not None:
            raise waiting.error
        proposal, model = waiting.result
        return proposal, heightmap, model, color

    def _run_batch(self) -> None:
        """Under the model lock: the oldest `max_batch` waiting requests through the newest model, each checked
        (queue time, exploration and action space) and chosen on alone; every one of them ends `done`."""
        with self._waiting_lock:
            batch = self._waiting[:self.config.max_batch]
            del self._waiting[:len(batch)]
        model = self._model  # the newest model, consistent with what runs
        try:
            ready = []
            for item in batch:
                try:
                    self._check_queue_time(item.received)
                    ready.append((item, GraspRequest(item.color, item.depth, item.workspace,
                                                     float(item.request.epsilon),
                                                     *exploration_from_request(item.request, model.num_rotations),
                                                     actions=action_space_from_request(item.request))))
                except Exception as e:  # noqa: BLE001 - refused alone; _on_propose reports it
                    item.error = e
            results = propose_many(model, [grasp for _, grasp in ready], self._rng) if ready else []
            if ready:
                with self._stats_lock:
                    self._stats["batches"] += 1
                    self._stats["batched"] += len(ready)
            for (item, _), result in zip(ready, results):
                if isinstance(result, Exception):
                    item.error = result
                else:
                    item.result = (result, model)
        except Exception as e:  # noqa: BLE001 - the network failed: the batch's unserved requests get its error
            for item in batch:
                item.error = item.error or (None if item.result else e)
        finally:  # whatever happened, no caller waits for ever
            for item in batch:
                if item.result is None and item.error is None:
                    item.error = RuntimeError("the batch stopped before this request was served")
                item.done = True

    def _check_queue_time(self, received: float) -> None:
        """Refuse a request that queued so long for the model that its client has most likely given up."""
        limit, waited = self.config.max_queue_seconds, time.perf_counter() - received
        if limit > 0 and waited > limit:
            raise ValueError(f"request waited {waited:.1f} s for the model, more than max_queue_seconds = {limit:g}: "
                             "not computed (its client has most likely timed out); send it again")

    def _publish_views(self, proposal: GraspProposal, heightmap: Heightmap, color: np.ndarray,
                       model: LoadedModel) -> None:
        header = Header(stamp=heightmap.header.stamp, frame_id=heightmap.header.frame_id)
        q_map = proposal.q_maps[proposal.best_rotation]
        if self._image_pub.get_subscription_count() > 0:
            jaw_px = self.config.jaw_width / heightmap.resolution
            image = affordance_image(color, q_map, (proposal.u, proposal.v), proposal.angle, jaw_px)
            self._image_pub.publish(numpy_to_image(image, "rgb8", header))
        if self._marker_pub.get_subscription_count() > 0:
            label = f"v{model.version}" + (" explore" if proposal.explored else "")
            self._marker_pub.publish(grasp_markers(header, proposal.position, proposal.angle,
                                                   self.config.jaw_width, proposal.q_value, label))
        if self._grid_pub.get_subscription_count() > 0:
            grid = affordance_grid(proposal.q_maps, proposal.rotation_index)
            self._grid_pub.publish(numpy_to_image(grid, "rgb8", header))
        if self._cloud_pub.get_subscription_count() > 0:
            _, depth, workspace = msg_to_heightmap(heightmap)
            self._cloud_pub.publish(point_cloud(heightmap_points(depth, workspace),
                                                affordance_colors(proposal.q_maps.max(axis=0)), header))

    # ------------------------------------------------------------------------------------------------ logs
    def _count(self, t0: float, failed: bool) -> None:
        with self._stats_lock:
            self._stats["failed" if failed else "served"] += 1
            self._stats["seconds"] += time.perf_counter() - t0

    def _log_stats(self) -> None:
        with self._stats_lock:
            stats, self._stats = self._stats, dict(NO_STATS)
        calls = stats["served"] + stats["failed"]
        if calls:
            version = self.model_version
            self.get_logger().info(f"last 10 s: {stats['served']} grasps proposed, {stats['failed']} refused, "
                                   f"mean {1e3 * stats['seconds'] / calls:.0f} ms per call, "
                                   f"{stats['batched'] / max(stats['batches'], 1):.1f} requests per inference batch, "
                                   f"model {'none' if version is None else f'v{version}'}")


CUSTOM_ACTION_SPACE = "custom"  # ProposeGrasp.action_space: the request's own four fields


def action_space_from_request(request: ProposeGrasp.Request) -> ActionSpaceConfig | None:
    """The action space a request asks for (ProposeGrasp.srv), validated: None = the model's own (""), a learning
    preset's (its name), or the request's object mask and jaw symmetry ("custom")."""
    choice = request.action_space
    custom_fields = {"object_mask": request.object_mask, "object_min_height": request.object_min_height,
                     "edge_margin": request.edge_margin, "symmetric_q": request.symmetric_q}
    if choice != CUSTOM_ACTION_SPACE:
        if choice and choice not in PRESETS:
            raise ValueError(f"action_space must be '' (the model's own), {CUSTOM_ACTION_SPACE!r} (the request's "
                             f"object_mask, object_min_height, edge_margin, symmetric_q) or a learning preset "
                             f"({', '.join(repr(name) for name in sorted(PRESETS))}), got {choice!r}")
        set_fields = [name for name, value in custom_fields.items() if value]
        if set_fields:
            raise ValueError(f"the request sets {', '.join(set_fields)} but action_space is {choice!r}, which does "
                             f"not read them: set action_space to {CUSTOM_ACTION_SPACE!r} to use them, or leave them "
                             "at false / 0")
        return None if not choice else dataclasses.replace(PRESETS[choice].actions)
    try:
        return ActionSpaceConfig(object_mask=bool(request.object_mask),
                                 min_height_m=float(request.object_min_height),
                                 edge_margin_m=float(request.edge_margin), symmetric_q=bool(request.symmetric_q))
    except ValueError as e:
        raise ValueError(f"bad action space in the request: {e}") from None


def exploration_from_request(request: ProposeGrasp.Request, num_rotations: int
                             ) -> tuple[str, float, FailedGraspMemory | None]:
    """(mode, temperature, excluded grasps) of a request, validated."""
    mode = request.exploration_mode or "uniform"
    if mode not in EXPLORATION_MODES:
        raise ValueError(f"exploration_mode must be one of {EXPLORATION_MODES} (or empty), got {mode!r}")
    temperature = float(request.temperature) or 0.1
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {request.temperature}")
    rotations = list(request.exclude_rotation_index)
    xs, ys = list(request.exclude_pixel_x), list(request.exclude_pixel_y)
    if not len(rotations) == len(xs) == len(ys):
        raise ValueError(f"exclude_rotation_index, exclude_pixel_x and exclude_pixel_y differ in length: "
                         f"{len(rotations)}, {len(xs)}, {len(ys)}")
    if not rotations:
        return mode, temperature, None
    radius = float(request.exclude_radius_px)
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"exclude_radius_px must be >= 0, got {request.exclude_radius_px}")
    if max(rotations) >= num_rotations:
        raise ValueError(f"exclude_rotation_index {max(rotations)} is not below the model's {num_rotations} "
                         "rotations")
    memory = FailedGraspMemory(num_rotations, radius)
    memory.recent = [(int(r), int(u), int(v)) for r, u, v in zip(rotations, xs, ys)]
    return mode, temperature, memory


def main(args=None) -> int:
    # Threads for concurrent service calls plus the model and heightmap callbacks (their own groups).
    return spin_node(AffordanceNode, "affordance_node", args,
                     make_executor=lambda: MultiThreadedExecutor(num_threads=6),
                     drain=lambda node, executor: node.drain(executor))


if __name__ == "__main__":
    raise SystemExit(main())
