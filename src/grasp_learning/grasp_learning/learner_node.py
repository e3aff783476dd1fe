"""learner_node: experiences in, durable replay, DQN updates, versioned checkpoints out.

- Every experience on `/grasp/experience` is decoded, checked and appended to the on-disk `ReplayStore`
  (fsync'ed) before it is counted; an id already stored is reported as a duplicate and not trained on again.
- A training thread walks the store in order and runs one `DQNLearner.update` per stored experience (plus
  VPG's prioritised replay step inside it), so a slow update never delays storing.
- Every `publish_every` updates of the learning preset (grasp_core.learning) it saves version k (weights +
  training state, atomically) and announces it
  on `/grasp/model` (transient local: late joiners get the newest).
- Start-up: resume from the newest complete checkpoint in `checkpoint_dir` if there is one (it wins over
  `pretrained_checkpoint`), then train whatever the store holds beyond it; otherwise build the profile's
  network, warm-start it from `pretrained_checkpoint` (if given), save it as version 0 and announce it.
- No model is saved or announced unless its weights and its Q maps on a recent heightmap are finite
  (grasp_core.model_check); a failing one is undone like a diverging update.
- A replay record that cannot be read is quarantined by the store (moved to `replay_dir/quarantine/`) and left
  out; the experience whose update drew it for prioritised replay is trained again, not blamed. So is a record
  whose heightmap is larger than `max_heightmap_pixels`; a message that large is refused before it is decoded.
- Experiences lost on the way (a burst larger than the topic's queue) are found from gaps in each executor's
  attempt numbers (grasp_core.attempts.AttemptNumbering) and logged as errors.
"""
from __future__ import annotations

import dataclasses
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
import torch
from grasp_interfaces.msg import GraspExperience, ModelVersion
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from grasp_core.attempts import AttemptNumbering
from grasp_core.checkpoint import load_q_network
from grasp_core.dqn import DQNConfig, DQNLearner, warm_start
from grasp_core.learning import PRESETS, PublicationSchedule, learning_config, parse_overrides
from grasp_core.model_check import VET_ROTATIONS, ModelCheckError, check_finite_q, check_model, probe_side_for
from grasp_core.profiles import PROFILES, get_profile
from grasp_core.replay import CorruptRecordError, ReplayStore
from grasp_learning.checkpoint_catalog import CheckpointCatalog
from grasp_learning.experience_conversion import msg_to_experience
from grasp_learning.learner_monitor import LearnerMonitor, tensorboard_folder
from grasp_ros.params import ParameterError, declare_config, in_range, one_of, parameter
from grasp_ros.qos import EXPERIENCE_QOS, MODEL_QOS

READY_MESSAGE = "learner ready"


@dataclass(frozen=True)
class LearnerConfig:
    """The learner's parameters (the DQN settings come from the learning preset, grasp_core.learning)."""

    replay_dir: str = parameter("runs/learner/replay", "On-disk replay store (every experience is written here "
                                "before it is counted).", check=bool, requirement="a non-empty folder path")
    checkpoint_dir: str = parameter("runs/learner/checkpoints", "Versioned checkpoints; the newest complete one is "
                                    "resumed at start-up.", check=bool, requirement="a non-empty folder path")
    pretrained_checkpoint: str = parameter("", "Pretrained Q_s to warm-start from when there is nothing to resume "
                                           "('' = random init, vanilla DQN).")
    profile: str = parameter("fast", "Network profile of a fresh start (a resumed or pretrained checkpoint must "
                             "match its trunk).", check=one_of(*PROFILES), requirement=f"one of {sorted(PROFILES)}")
    keep_checkpoints: int = parameter(5, "Complete versions kept on disk (older ones are deleted; 0 = keep all).",
                                      check=in_range(0, 1_000_000), requirement="an integer >= 0")
    learning: str = parameter("default", "Learning preset (grasp_core.learning.PRESETS): DQN settings, replay "
                              "schedule and how often a model version is published; give the executors the same "
                              "one.", check=one_of(*PRESETS), requirement=f"one of {sorted(PRESETS)}")
    learning_overrides: str = parameter("", "Space-separated section.field=value overrides of the preset, e.g. "
                                        "'dqn.gamma=0.9 publish_every=10'.")
    seed: int = parameter(0, "Seed of the learner's random streams (replay sampling, init).")
    torch_threads: int = parameter(0, "torch intra-op threads; 0 = torch's default.", check=in_range(0, 256),
                                   requirement="0 <= torch_threads <= 256")
    experience_topic: str = parameter("/grasp/experience", "Replay topic.", check=bool,
                                      requirement="a non-empty topic name")
    model_topic: str = parameter("/grasp/model", "Where new model versions are announced.", check=bool,
                                 requirement="a non-empty topic name")
    tensorboard_dir: str = parameter("", "TensorBoard folder ('' = tensorboard/ beside checkpoint_dir, in the "
                                     "run's folder; 'off' = none).")
    tensorboard_image_every: int = parameter(50, "Updates between affordance images (and Q scales) in "
                                             "TensorBoard.", check=in_range(1, 1_000_000),
                                             requirement="an integer >= 1")
    max_heightmap_pixels: int = parameter(512 * 512, "Largest experience heightmap stored or trained, in pixels "
                                          "(the affordance node's cap): a larger message is refused before it is "
                                          "decoded, a larger stored record is quarantined when read.",
                                          check=in_range(64, 4096 * 4096), requirement="64 <= pixels <= 4096^2")


class LearnerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("learner_node", **kwargs)
        self.config = config = declare_config(self, LearnerConfig)
        try:
            self.learning = learning_config(config.learning, parse_overrides(config.learning_overrides))
        except ValueError as e:
            raise ParameterError(f"learning / learning_overrides: {e}") from None
        self.publication = PublicationSchedule(self.learning.publish_every)
        if config.torch_threads > 0:
            torch.set_num_threads(int(config.torch_threads))
        torch.manual_seed(config.seed)

        try:
            self.store = ReplayStore(config.replay_dir, max_pixels=config.max_heightmap_pixels)
        except ValueError as e:
            raise ParameterError(f"replay_dir {config.replay_dir!r}: {e}") from None
        self.catalog = CheckpointCatalog(config.checkpoint_dir)
        self._monitor = LearnerMonitor(self, tensorboard_folder(config.tensorboard_dir, config.checkpoint_dir),
                                       config.tensorboard_image_every)  # TensorBoard + /grasp/learner/updates
        self._model_pub = self.create_publisher(ModelVersion, config.model_topic, MODEL_QOS)
        self._received = 0  # experiences stored by this process
        self._duplicates = 0
        self._rejected = 0
        self.lost_experiences = 0  # found from gaps in a source's attempt numbers
        self._numbering = AttemptNumbering()
        for index in range(len(self.store)):  # a restarted learner: what each source sent while it was down
            meta = self.store.metadata(index)
            if meta.get("id") is not None:
                self._numbering.last[meta["source"]] = meta["attempt"]
        self._last_loss: float | None = None
        self._diverged = 0
        self._skip: set[int] = set()  # store indices whose update failed: never trained
        self._probe = None  # (colour, depth) of the newest experience trained: what new models are checked on
        for index, reason in sorted(self.store.quarantined.items()):
            self.get_logger().error(f"replay record #{index} is quarantined in {self.store.directory}/quarantine "
                                    f"and will not be trained on: {reason}")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._build_learner()
        self._updates_since_save = 0

        self.create_subscription(GraspExperience, config.experience_topic, self._on_experience, EXPERIENCE_QOS)
        self.create_timer(10.0, self._log_stats)
        self._trainer = threading.Thread(target=self._train_loop, name="dqn-trainer", daemon=True)
        self._trainer.start()
        self.get_logger().info(f"{READY_MESSAGE}: listening on {config.experience_topic}, replay "
                               f"{self.store.directory} ({len(self.store)} stored), model v{self.version} "
                               f"({self.learner.qnet.fcn.trunk_name}, {self.num_rotations} rotations)")

    # ------------------------------------------------------------------------------------------------ set-up
    def _dqn_config(self, profile_name: str | None) -> DQNConfig:
        profile = PROFILES.get(profile_name or "")
        kwargs = {"inference": profile.inference} if profile else {}
        return dataclasses.replace(self.learning.dqn, seed=self.config.seed, **kwargs)

    def _build_learner(self) -> None:
        config, log = self.config, self.get_logger()
        resumed = self._load_latest()
        if resumed is None and self.catalog.entries():
            raise ParameterError(f"checkpoint_dir {self.catalog.directory} holds checkpoints but none can be "
                                 "resumed (see the errors above); move them away to start afresh")
        if resumed is not None:
            resume, self.learner = resumed
            self.version, self.trained = resume.version, resume.trained
            backlog = len(self.store) - self.trained
            log.info(f"resuming from {resume.model_path} (version {resume.version}, {resume.updates} updates, "
                     f"{resume.trained} experiences trained); the replay holds {len(self.store)}, so "
                     f"{backlog} stored after that checkpoint will be trained on now")
            if config.pretrained_checkpoint:
                log.info(f"pretrained_checkpoint {config.pretrained_checkpoint} not used: resuming wins")
            self._announce(resume.model_path)
            return
        profile = get_profile(config.profile)
        qnet = profile.build_q_network()
        if config.pretrained_checkpoint:
            try:
                warm_start(qnet, config.pretrained_checkpoint)
            except (OSError, ValueError) as e:
                raise ParameterError(f"pretrained_checkpoint {config.pretrained_checkpoint!r} cannot warm-start a "
                                     f"{profile.name} network: {e}") from None
            log.info(f"warm start from {config.pretrained_checkpoint} (profile {profile.name})")
        else:
            log.warning(f"no pretrained_checkpoint: starting from a random {profile.name} network (vanilla DQN)")
        self.learner = DQNLearner(qnet, self._dqn_config(profile.name), self.store, profile=profile.name,
                                  actions=self.learning.actions)
        self._retire_quarantined(self.learner)
        self.version, self.trained = 0, 0
        if len(self.store):
            log.info(f"no checkpoint to resume but the replay holds {len(self.store)} experiences: training on "
                     "all of them")
        try:
            self._save_and_announce()
        except ModelCheckError as e:
            start = config.pretrained_checkpoint or f"a random {profile.name} network"
            raise ParameterError(f"the starting model ({start}) cannot be served: {e}; pretrain it again (or "
                                 "check its BatchNorm statistics)") from None

    def _load_latest(self):
        """(entry, DQNLearner) of the newest checkpoint that loads (an unreadable one falls back to the one
        before), or None."""
        for entry in reversed(self.catalog.entries()):
            try:
                qnet, record = load_q_network(entry.model_path)
                learner = DQNLearner(qnet, self._dqn_config(record.get("profile")), self.store,
                                     profile=record.get("profile"), actions=self.learning.actions)
                learner.load(entry.model_path)
                self._retire_quarantined(learner)
                self._check_model(learner, f"checkpoint version {entry.version}")  # one saved before the checks
                return entry, learner
            except (OSError, ValueError, KeyError) as e:
                self.get_logger().error(f"cannot resume from {entry.model_path}: {type(e).__name__}: {e}")
        return None

    @property
    def num_rotations(self) -> int:
        return self.learner.qnet.num_rotations

    # ------------------------------------------------------------------------------------------------ storing
    def _on_experience(self, msg: GraspExperience) -> None:
        log = self.get_logger()
        if not (msg.id and self.store.index_of(msg.id) is not None):  # a re-sent one is no jump in the numbering
            self._check_numbering(msg.source, int(msg.attempt))  # refused ones too: they arrived
        try:
            experience = msg_to_experience(msg, self.config.max_heightmap_pixels)
            if experience.num_rotations != self.num_rotations:
                raise ValueError(f"experience {experience.id} has {experience.num_rotations} rotations, the "
                                 f"network {self.num_rotations}")
        except ValueError as e:
            self._rejected += 1
            log.error(f"dropped an experience from {msg.source or '?'} (attempt {msg.attempt}): {e}")
            return
        known = self.store.index_of(experience.id)
        if known is not None:
            self._duplicates += 1
            log.warning(f"experience {experience.id} from {experience.source} is already stored as #{known}: "
                        "duplicate, not stored or trained again")
            return
        try:
            index = self.store.append(experience)  # durable (fsync + rename) before it counts
        except (OSError, ValueError) as e:
            self._rejected += 1
            log.error(f"could not store experience {experience.id}: {type(e).__name__}: {e}")
            return
        self._received += 1
        self._monitor.on_experience(experience)
        log.info(f"stored experience #{index} (id {experience.id}, {experience.source or '?'} attempt "
                 f"{experience.attempt}, reward {experience.reward:g}); {len(self.store)} stored, "
                 f"{len(self.store) - self.trained} waiting for training")
        self._wake.set()

    def _check_numbering(self, source: str, attempt: int) -> None:
        """An executor numbers its attempts 1, 2, 3, ...: a gap is experiences lost on the way (a burst larger
        than the topic's queue), which nobody else notices."""
        jump = self._numbering.observe(source, attempt)
        if jump is None:
            return
        if jump.restarted:
            self.get_logger().info(jump.describe())
            return
        self.lost_experiences += jump.lost
        self.get_logger().error(f"{jump.describe()}; {self.lost_experiences} lost in all since this learner "
                                "started (a burst larger than the experience topic's queue, or sent while the "
                                "learner was down)")

    # ------------------------------------------------------------------------------------------------ training
    def _train_loop(self) -> None:
        log = self.get_logger()
        while not self._stop.is_set():
            if self.trained >= len(self.store):
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            index = self.trained
            self.trained = index + 1
            if index in self._skip or index in self.store.quarantined:
                continue
            try:
                experience = self.store[index]
                self._probe = (experience.color_hm, experience.depth_hm)
                stats = self.learner.update(experience)
                if not self._weights_finite():  # the learner undoes its own divergences; this catches the rest
                    raise FloatingPointError("non-finite weights after an update")
                if not self.publication.due_after_next():  # a due version gets the same check in _check_model
                    check_finite_q(self.learner.qnet, experience.color_hm, experience.depth_hm,  # finite weights
                                   self.learner.config.inference, "the updated network",  # can still give NaN
                                   rotations=VET_ROTATIONS)
            except Exception as e:  # noqa: BLE001 - one bad record or a broken learner must not stop learning
                self._recover(index, e)
                continue
            if stats.diverged:  # the learner undid the update: nothing non-finite reaches a model version
                self._diverged += 1
                log.error(f"update {stats.step} on experience #{index} diverged and was undone "
                          f"({self._diverged} so far); the published model is unchanged")
                continue
            self._last_loss = stats.loss
            self._monitor.after_update(stats, experience, self.learner.qnet)
            replayed = "" if stats.replayed_index is None else \
                f", replayed #{stats.replayed_index} (loss {stats.replayed_loss:.4f})"
            log.info(f"update {stats.step} on experience #{index} (reward {experience.reward:g}): loss "
                     f"{stats.loss:.4f}, Q {stats.predicted:.3f} -> target {stats.target:.3f}{replayed}")
            self._updates_since_save += 1
            if self.publication.after_update():
                try:
                    self._save_and_announce()
                except ModelCheckError as e:  # finite weights, non-finite Q: undone like a divergence
                    self._recover(index, e)

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.learner.qnet.state_dict().values()
                   if t.is_floating_point())

    def _retire_quarantined(self, learner: DQNLearner) -> None:
        """Quarantined records are never drawn for prioritised replay (also after a reload from a checkpoint)."""
        sampler = getattr(learner, "sampler", None)
        for index in self.store.quarantined:
            if sampler is not None and index < len(sampler):
                sampler.retire(index)

    def _check_model(self, learner: DQNLearner, what: str) -> None:
        """ModelCheckError unless the weights and the Q maps of VET_ROTATIONS on the newest trained heightmap are
        finite (the affordance node checks the same before it swaps a version in)."""
        color, depth = self._probe if self._probe is not None else (None, None)
        profile = PROFILES.get(learner.profile or "")
        check_model(learner.qnet, color, depth, learner.config.inference, what,
                    probe_side_for(profile.resolution if profile else None), rotations=VET_ROTATIONS)

    def _recover(self, index: int, error: Exception) -> None:
        """An update failed half-way (the network or replay sampler may be damaged): go back to the newest
        checkpoint, which never holds non-finite weights, and train again from there without this experience.
        A corrupt replay record is the record's fault, not the experience's: the store has quarantined it."""
        log = self.get_logger()
        corrupt = error.index if isinstance(error, CorruptRecordError) else None
        if corrupt == index:  # its own record could not be read: nothing was trained, nothing to undo
            self._skip.add(index)
            log.error(f"experience #{index} left out: {error}")
            return
        self._skip.add(index if corrupt is None else corrupt)
        if corrupt is not None:
            log.error(f"update on experience #{index} drew record #{corrupt} for prioritised replay: {error}; "
                      f"experience #{index} is fine and will be trained again")
        resumed = self._load_latest()
        if resumed is None:
            log.fatal(f"update on experience #{index} failed ({type(error).__name__}: {error}) and no checkpoint "
                      "can be reloaded; the learner stops training")
            self._stop.set()
            return
        entry, self.learner = resumed
        self.trained, self._updates_since_save = entry.trained, 0
        self.publication.since_last = 0
        log.error(f"update on experience #{index} failed ({type(error).__name__}: {error}); back to checkpoint "
                  f"version {entry.version} ({entry.updates} updates): training again from experience "
                  f"#{entry.trained}, leaving out #{sorted(self._skip)}")

    def _save_and_announce(self) -> None:
        version = self.version + 1 if self.catalog.latest() is not None else 0
        self._check_model(self.learner, f"model version {version}")  # never save or announce NaN/inf
        t0 = time.perf_counter()
        path = self.learner.save(self.catalog.model_path(version), version=version)
        self.catalog.write_progress(version, self.trained, self.learner.step, len(self.store))
        self.version = version
        self._updates_since_save = 0
        self.publication.since_last = 0
        self.get_logger().info(f"checkpoint version {version} saved in {time.perf_counter() - t0:.2f} s: {path} "
                               f"({self.learner.step} updates, {self.trained} experiences)")
        deleted = self.catalog.prune(self.config.keep_checkpoints)
        if deleted:
            self.get_logger().debug(f"deleted old checkpoint versions {deleted}")
        self._announce(path)

    def _announce(self, path: Path) -> None:
        if not rclpy.ok(context=self.context):
            return
        msg = ModelVersion(version=int(self.version), path=str(Path(path).resolve()),
                           trunk=self.learner.qnet.fcn.trunk_name, num_rotations=self.num_rotations,
                           updates=int(self.learner.step), experiences=int(self.trained))
        msg.stamp = self.get_clock().now().to_msg()
        self._model_pub.publish(msg)
        self.get_logger().info(f"announced model version {self.version} on {self.config.model_topic}")

    # ------------------------------------------------------------------------------------------------ life cycle
    def _log_stats(self) -> None:
        loss = "-" if self._last_loss is None else f"{self._last_loss:.4f}"
        self.get_logger().info(f"status: {len(self.store)} stored ({self._received} this run, {self._duplicates} "
                               f"duplicates, {self._rejected} rejected, {self.lost_experiences} lost on the way), "
                               f"{self.trained} trained, "
                               f"{len(self.store) - self.trained} waiting, {self.learner.step} updates, last loss "
                               f"{loss}, model v{self.version}")

    def shutdown(self, save: bool = True) -> None:
        """Stop the trainer after its current update; save a last checkpoint if it trained since the last one."""
        self._stop.set()
        self._wake.set()
        self._trainer.join(timeout=60.0)
        if save and self._updates_since_save > 0:
            try:
                self._save_and_announce()
            except ModelCheckError as e:
                self.get_logger().error(f"last checkpoint not saved: {e}; version {self.version} is the newest")
        self.store.close()
        self._monitor.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(args=None) -> int:
    # Our own SIGINT/SIGTERM handling: the context stays valid until the last checkpoint is saved and announced.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        node = LearnerNode()
    except ParameterError as e:
        print(f"[learner_node] error: {e}", flush=True)
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.2)  # short waits: Python sees a signal within 0.2 s
    except (KeyboardInterrupt, ExternalShutdownException):
        node.get_logger().info("stopping: finishing the current update")
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
