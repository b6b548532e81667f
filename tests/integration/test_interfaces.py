"""meta_robot_interfaces as built by tools/build_interfaces.sh (or colcon): every type imports and
loads its type support, fields and constants are what the .msg/.srv/.action files say, and the types
travel over DDS between processes (a topic and a service, each served by a separate process).

Every ROS process here runs with meta_robot.ros.environment.loopback_environment() (conftest.py applies it to
this process; the children get it explicitly). No timing thresholds: the deadlines only stop a hang.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.type_support import check_for_type_support

from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.environment import loopback_environment

try:
    from meta_robot_interfaces import action as if_action
    from meta_robot_interfaces import msg as if_msg
    from meta_robot_interfaces import srv as if_srv
except ImportError as error:  # a missing build must fail loudly, not skip
    pytest.fail(
        f"meta_robot_interfaces does not import ({error}); build it with tools/build_interfaces.sh",
        pytrace=False,
    )

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0  # only to stop a hang; nothing here measures time
MESSAGES = ["ArmCommand", "GripperState", "ObjectState", "ObjectStates", "Plan", "PlanStep", "SkillStatus"]
SERVICES = ["PerturbObject", "ResetSim"]
ACTIONS = ["ExecuteSkill", "ExecuteTask"]


# --- the types themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [(if_msg, n) for n in MESSAGES] + [(if_srv, n) for n in SERVICES] + [(if_action, n) for n in ACTIONS],
    ids=lambda v: v if isinstance(v, str) else v.__name__.rsplit(".", 1)[-1],
)
def test_type_imports_and_loads_its_type_support(module, name):
    cls = getattr(module, name)
    check_for_type_support(cls)  # raises if the C type support libraries cannot be loaded


def fields(cls) -> dict[str, str]:
    return dict(cls.get_fields_and_field_types())


def test_message_fields():
    assert fields(if_msg.ArmCommand) == {
        "header": "std_msgs/Header",
        "mode": "uint8",
        "pose": "geometry_msgs/Pose",
        "gripper_width": "double",
        "source": "string",
    }
    assert fields(if_msg.GripperState) == {
        "header": "std_msgs/Header",
        "width": "double",
        "max_width": "double",
        "grasped": "boolean",
    }
    assert fields(if_msg.ObjectState) == {
        "name": "string",
        "pose": "geometry_msgs/Pose",
        "twist": "geometry_msgs/Twist",
    }
    assert fields(if_msg.ObjectStates) == {
        "header": "std_msgs/Header",
        "objects": "sequence<meta_robot_interfaces/ObjectState>",
        "joint_names": "sequence<string>",
        "joint_positions": "sequence<double>",
    }
    assert fields(if_msg.PlanStep) == {"skill": "string", "arguments": "sequence<string>"}
    assert fields(if_msg.Plan) == {
        "header": "std_msgs/Header",
        "goal": "string",
        "steps": "sequence<meta_robot_interfaces/PlanStep>",
    }
    assert fields(if_msg.SkillStatus) == {
        "header": "std_msgs/Header",
        "skill": "string",
        "arguments": "sequence<string>",
        "state": "uint8",
        "step": "uint32",
        "success_probability": "float",
    }


def test_message_constants():
    assert (if_msg.ArmCommand.MODE_ABSOLUTE, if_msg.ArmCommand.MODE_DELTA) == (0, 1)
    status = if_msg.SkillStatus
    assert [
        status.IDLE,
        status.RUNNING,
        status.SUCCEEDED,
        status.FAILED,
        status.TIMED_OUT,
        status.PREEMPTED,
    ] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    result = if_action.ExecuteSkill.Result
    assert [result.SUCCEEDED, result.FAILED, result.TIMED_OUT, result.PREEMPTED] == [0, 1, 2, 3]


def test_service_fields():
    assert fields(if_srv.ResetSim.Request) == {"scenario": "string", "seed": "int64"}
    assert fields(if_srv.ResetSim.Response) == {"success": "boolean", "message": "string"}
    assert fields(if_srv.PerturbObject.Request) == {
        "object_name": "string",
        "displacement": "geometry_msgs/Vector3",
        "yaw": "double",
    }
    assert fields(if_srv.PerturbObject.Response) == {"success": "boolean", "message": "string"}


def test_action_fields():
    skill = if_action.ExecuteSkill
    assert fields(skill.Goal) == {"skill": "string", "arguments": "sequence<string>", "timeout": "double"}
    assert fields(skill.Result) == {"outcome": "uint8", "success_probability": "float", "message": "string"}
    assert fields(skill.Feedback) == {"step": "uint32", "success_probability": "float"}
    task = if_action.ExecuteTask
    assert fields(task.Goal) == {"task": "string", "goal": "string"}
    assert fields(task.Result) == {
        "success": "boolean",
        "message": "string",
        "skills_executed": "uint32",
        "retries": "uint32",
        "replans": "uint32",
    }
    assert fields(task.Feedback) == {
        "plan": "meta_robot_interfaces/Plan",
        "current_step": "uint32",
        "retries": "uint32",
    }
    # The generated action plumbing rclpy's ActionClient/ActionServer use.
    for action in (skill, task):
        check_for_type_support(action.Impl.SendGoalService)
        check_for_type_support(action.Impl.GetResultService)
        check_for_type_support(action.Impl.FeedbackMessage)


def test_nested_messages_survive_serialization():
    plan = if_msg.Plan(
        goal="(and (in red_cube drawer) (closed drawer))",
        steps=[
            if_msg.PlanStep(skill="open_drawer", arguments=["drawer"]),
            if_msg.PlanStep(skill="pick", arguments=["red_cube"]),
        ],
    )
    plan.header.frame_id = "world"
    feedback = if_action.ExecuteTask.Feedback(plan=plan, current_step=1, retries=2)
    back = deserialize_message(serialize_message(feedback), if_action.ExecuteTask.Feedback)
    assert back == feedback
    assert [s.skill for s in back.plan.steps] == ["open_drawer", "pick"]

    states = if_msg.ObjectStates(
        objects=[if_msg.ObjectState(name="red_cube")], joint_names=["drawer_slide"], joint_positions=[0.12]
    )
    states.objects[0].pose.position.z = 0.8
    back = deserialize_message(serialize_message(states), if_msg.ObjectStates)
    assert back.objects[0].name == "red_cube"
    assert back.objects[0].pose.position.z == 0.8
    assert list(back.joint_positions) == [0.12]


# --- across processes over DDS ------------------------------------------------------------------------

# Runs in a child process: publishes ArmCommands, or serves ResetSim, until its stdin closes.
CHILD = r"""
import os, sys, threading
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from meta_robot_interfaces.msg import ArmCommand
from meta_robot_interfaces.srv import ResetSim

role, name = sys.argv[1], sys.argv[2]
rclpy.init()
node = rclpy.create_node("test_interfaces_" + role)

if role == "publisher":
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(ArmCommand, name, qos)
    count = [0]

    def tick():
        count[0] += 1
        cmd = ArmCommand(mode=ArmCommand.MODE_DELTA, gripper_width=0.04, source="child-%d" % os.getpid())
        cmd.header.stamp = node.get_clock().now().to_msg()
        cmd.header.frame_id = "panda_link0"
        cmd.pose.position.x = 0.5
        cmd.pose.position.z = 0.3 + 0.001 * count[0]
        cmd.pose.orientation.w = 1.0
        pub.publish(cmd)

    node.create_timer(0.05, tick)
else:

    def reset(request, response):
        response.success = request.seed >= 0
        scenario = request.scenario or "<current>"
        response.message = "reset %s seed %d by %d" % (scenario, request.seed, os.getpid())
        return response

    node.create_service(ResetSim, name, reset)


def stop_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
print("ready", flush=True)
rclpy.spin(node)
"""


@pytest.fixture(scope="module")
def ros() -> Iterator[BackgroundNode]:
    with BackgroundNode("test_interfaces") as background:
        yield background


def start_child(role: str, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, role, name],
        env=loopback_environment(),  # same ROS_DOMAIN_ID as this process (conftest set it)
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_child(child: subprocess.Popen) -> str:
    """Closes the child's stdin (it exits) and returns its output."""
    child.stdin.close()
    try:
        child.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return child.stdout.read()


def check_alive(child: subprocess.Popen) -> None:
    if child.poll() is not None:
        pytest.fail(f"child process exited with {child.returncode}:\n{child.stdout.read()}", pytrace=False)


def test_arm_command_from_another_process(ros):
    topic = "/test_interfaces/arm_command"
    received: list[if_msg.ArmCommand] = []
    got = threading.Event()

    def on_command(cmd):
        received.append(cmd)
        got.set()

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    sub = ros.node.create_subscription(if_msg.ArmCommand, topic, on_command, qos)
    child = start_child("publisher", topic)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not got.wait(0.2):
            check_alive(child)
            assert time.monotonic() < deadline, "no ArmCommand arrived from the publisher process"
    finally:
        output = stop_child(child)
        ros.node.destroy_subscription(sub)

    cmd = received[0]
    assert cmd.source == f"child-{child.pid}", output  # it really came from the other process
    assert cmd.mode == if_msg.ArmCommand.MODE_DELTA
    assert cmd.header.frame_id == "panda_link0"
    assert cmd.header.stamp.sec > 0
    assert cmd.gripper_width == 0.04
    assert cmd.pose.position.x == 0.5
    assert math.isclose(cmd.pose.orientation.w, 1.0)


def test_reset_sim_service_served_by_another_process(ros):
    name = "/test_interfaces/reset_sim"
    client = ros.node.create_client(if_srv.ResetSim, name)
    child = start_child("server", name)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not client.wait_for_service(timeout_sec=0.5):
            check_alive(child)
            assert time.monotonic() < deadline, "the ResetSim service never appeared"

        future = client.call_async(if_srv.ResetSim.Request(scenario="drawer", seed=7))
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        assert done.wait(DEADLINE_S), "no ResetSim response"
        response = future.result()
        assert response.success
        assert response.message == f"reset drawer seed 7 by {child.pid}"

        future = client.call_async(if_srv.ResetSim.Request(scenario="", seed=-1))
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        assert done.wait(DEADLINE_S), "no ResetSim response"
        assert not future.result().success
        assert future.result().message.startswith("reset <current> seed -1")
    finally:
        stop_child(child)
        ros.node.destroy_client(client)
    assert rclpy.ok()
