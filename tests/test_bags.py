"""ROS 2 bags of experiences and proposals: write, read back, compare; decoded from the bag's own schemas (as
Foxglove and `ros2 bag play` do, without our message packages); and the recorder node over DDS."""
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.workspace import WorkspaceLimits  # noqa: E402
from grasp_interfaces.msg import GraspExperience, ModelVersion  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from service_msgs.msg import ServiceEventInfo  # noqa: E402

from grasp_ros.bag import BagWriter, message_definition, read_bag, type_name  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg  # noqa: E402
from grasp_ros.qos import EXPERIENCE_QOS, MODEL_QOS  # noqa: E402

pytestmark = pytest.mark.ros
WORKSPACE = WorkspaceLimits(-0.7, -0.636, -0.032, 0.032, 0.0, 0.3, 0.004)  # 16 x 16 cells


def heightmap(seed):
    rng = np.random.default_rng(seed)
    msg = heightmap_to_msg(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                           rng.uniform(0, 0.05, (16, 16)).astype(np.float32), WORKSPACE)
    msg.header.frame_id, msg.header.stamp.sec = "world", 100 + seed
    return msg


def experience(i):
    msg = GraspExperience(id=f"exp-{i}", source="/robot1", attempt=i, heightmap=heightmap(i), pixel_x=3 + i, pixel_y=7,
                          rotation_index=5, num_rotations=16, reward=float(i % 2),
                          terminal=i == 2, next_heightmap=heightmap(10 + i), model_version=4, epsilon=0.25,
                          explored=bool(i % 2), predicted_q=0.125, failure_reason=0)
    msg.pose.header.frame_id = "world"
    msg.pose.pose.position.x = -0.68
    return msg


def proposal_event(i):
    event = ProposeGrasp.Event()
    event.info.event_type = ServiceEventInfo.RESPONSE_SENT
    event.info.sequence_number = i
    event.request = [ProposeGrasp.Request(epsilon=0.5, heightmap=heightmap(20 + i))]
    response = ProposeGrasp.Response(success=True, message="greedy", angle=0.3927, q_value=0.8,
                                     center_px=[4.0, 9.0], rotation_index=1, num_rotations=16, model_version=4)
    response.pose.header.frame_id = "world"
    event.response = [response]
    return event


def test_message_definitions_are_rosbag2_style():
    text = message_definition(GraspExperience)
    assert text.splitlines()[0] == "string id"
    assert "grasp_interfaces/Heightmap heightmap" in text and "\nMSG: grasp_interfaces/Heightmap\n" in text
    assert "\nMSG: sensor_msgs/Image\n" in text and "uint8[] data" in text and "\nMSG: std_msgs/Header\n" in text
    event = message_definition(ProposeGrasp.Event)
    assert "grasp_interfaces/ProposeGrasp_Request[<=1] request" in event
    assert "float64[2] center_px" in event and "\nMSG: service_msgs/ServiceEventInfo\n" in event
    assert type_name(ProposeGrasp.Event) == "grasp_interfaces/srv/ProposeGrasp_Event"


def test_round_trip_write_read_compare(tmp_path):
    bag = tmp_path / "bag"
    written = []
    with BagWriter(bag, {"/grasp/experience": GraspExperience, "/propose_grasp/_service_event": ProposeGrasp.Event,
                         "/grasp/model": "grasp_interfaces/msg/ModelVersion"}) as writer:
        for i in range(3):
            for topic, msg in (("/propose_grasp/_service_event", proposal_event(i)),
                               ("/grasp/experience", experience(i))):
                stamp = 1_000_000_000 * (i + 1) + len(written)
                writer.write(topic, msg, stamp)
                written.append((topic, msg, stamp))
        model = ModelVersion(version=4, path="/tmp/m.safetensors", trunk="small_cnn", num_rotations=16)
        writer.write("/grasp/model", model, 9_000_000_000)
        written.append(("/grasp/model", model, 9_000_000_000))
    # A rosbag2 folder: metadata.yaml + one MCAP file (what `ros2 bag info/play` opens).
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap" and metadata["message_count"] == 7
    assert {t["topic_metadata"]["serialization_format"] for t in metadata["topics_with_message_count"]} == {"cdr"}
    with pytest.raises(FileExistsError, match="never overwritten"):
        BagWriter(bag, {})

    read = list(read_bag(bag))
    assert [(t, s) for t, _, s, _ in read] == [(t, s) for t, _, s in written]
    classes = {"grasp_interfaces/msg/GraspExperience": GraspExperience,
               "grasp_interfaces/msg/ModelVersion": ModelVersion,
               "grasp_interfaces/srv/ProposeGrasp_Event": ProposeGrasp.Event}
    for (topic, msgtype, _, raw), (_, original, _) in zip(read, written):
        assert deserialize_message(raw, classes[msgtype]) == original, topic


def test_the_bag_decodes_from_its_own_schemas(tmp_path):
    """What Foxglove and `ros2 bag play` rely on: the ros2msg schema stored in the MCAP file decodes the CDR bytes,
    with no ROS message package. Experiences through mcap-ros2-support (Foxglove's Python decoder); service events
    through rosbags (mcap-ros2-support's parser refuses the `_Event` / `_Request` type names that ROS 2 gives
    service events)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    bag = tmp_path / "bag"
    with BagWriter(bag, {"/grasp/experience": GraspExperience,
                         "/propose_grasp/_service_event": ProposeGrasp.Event}) as writer:
        writer.write("/grasp/experience", experience(1), 5)
        writer.write("/propose_grasp/_service_event", proposal_event(2), 6)
    (mcap_file,) = bag.glob("*.mcap")
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        records = {channel.topic: (schema, message) for schema, channel, message in reader.iter_messages()}
        f.seek(0)
        exp = next(msg for _, channel, _, msg in make_reader(f, decoder_factories=[DecoderFactory()])
                   .iter_decoded_messages(topics=["/grasp/experience"]))
    schema, _ = records["/grasp/experience"]
    assert (schema.name, schema.encoding) == ("grasp_interfaces/msg/GraspExperience", "ros2msg")
    original = experience(1)
    assert (exp.id, exp.reward, exp.pixel_x, exp.rotation_index, exp.explored) == ("exp-1", 1.0, 4, 5, True)
    assert exp.heightmap.depth.encoding == "32FC1"
    assert bytes(exp.heightmap.depth.data) == bytes(original.heightmap.depth.data)
    assert bytes(exp.next_heightmap.color.data) == bytes(original.next_heightmap.color.data)
    assert exp.pose.pose.position.x == pytest.approx(-0.68)

    schema, message = records["/propose_grasp/_service_event"]
    assert (schema.name, schema.encoding) == ("grasp_interfaces/srv/ProposeGrasp_Event", "ros2msg")
    store = get_typestore(Stores.EMPTY)
    types = get_types_from_msg(schema.data.decode(), schema.name)
    store.register(types)
    (event_type,) = [name for name in types if name.endswith("ProposeGrasp_Event")]
    event = store.deserialize_cdr(message.data, event_type)
    assert event.info.sequence_number == 2 and list(event.response[0].center_px) == [4.0, 9.0]
    assert event.request[0].heightmap.resolution == pytest.approx(0.004)
    assert bytes(event.request[0].heightmap.color.data) == bytes(proposal_event(2).request[0].heightmap.color.data)


def test_recorder_node_records_live_topics_including_the_backlog(tmp_path):
    from grasp_ros.bag_recorder import BagRecorder

    rclpy.init()
    try:
        source = rclpy.create_node("bag_test_source")
        experiences = source.create_publisher(GraspExperience, "/grasp/experience", EXPERIENCE_QOS)
        models = source.create_publisher(ModelVersion, "/grasp/model", MODEL_QOS)
        events = source.create_publisher(ProposeGrasp.Event, "/propose_grasp/_service_event", 10)
        experiences.publish(experience(0))  # before the recorder exists: kept by the transient-local publisher
        models.publish(ModelVersion(version=1, path="/m", trunk="small_cnn", num_rotations=16))
        recorder = BagRecorder(parameter_overrides=[rclpy.parameter.Parameter("output", value=str(tmp_path / "b"))])
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(source)
        executor.add_node(recorder)
        deadline = time.monotonic() + 60.0
        sent = False
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if not sent and len(recorder._recording) == 3 and events.get_subscription_count():
                experiences.publish(experience(1))
                events.publish(proposal_event(1))
                sent = True
            counts = recorder.bag.counts
            if sent and counts.get("/grasp/experience", 0) >= 2 and counts.get("/grasp/model", 0) >= 1 \
                    and counts.get("/propose_grasp/_service_event", 0) >= 1:
                break
        assert sent, f"the recorder did not subscribe to every topic (pending {recorder._waiting_topics})"
        recorder.destroy_node()
        source.destroy_node()
    finally:
        rclpy.shutdown()
    read = list(read_bag(tmp_path / "b"))
    by_topic = {}
    for topic, msgtype, _, raw in read:
        by_topic.setdefault(topic, []).append(raw)
    got = [deserialize_message(raw, GraspExperience).id for raw in by_topic["/grasp/experience"]]
    assert got == ["exp-0", "exp-1"]
    assert deserialize_message(by_topic["/grasp/model"][0], ModelVersion).version == 1
    event = deserialize_message(by_topic["/propose_grasp/_service_event"][0], ProposeGrasp.Event)
    assert event.info.sequence_number == 1
    assert Path(tmp_path / "b" / "metadata.yaml").is_file()
