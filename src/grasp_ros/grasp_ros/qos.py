"""QoS profiles of the grasp topics, in one place so publishers and subscribers always match."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# /grasp/experience: every attempt must reach the learner. Reliable, and transient-local so that experiences
# published before the learner matched the executor (start-up discovery) or while it was restarting are
# delivered when it (re)joins; the learner stores each id once. The publisher keeps the last 1000 for that
# (~175 MB at the fast profile's 112 px, ~700 MB at 224 px).
EXPERIENCE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /grasp/model: the last announced checkpoint reaches late joiners (transient local, depth 1).
MODEL_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /grasp/heightmap and camera streams: the newest frame matters, old ones may be dropped.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

# /grasp/heightmap for late joiners (the affordance node needs the latest one at once).
LATEST_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
