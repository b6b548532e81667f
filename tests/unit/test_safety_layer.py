"""The safety core: every refusal reason, e-stop latching, watchdog, force limit, rate limiting, and a
property test that no command sequence ever yields a driver target outside the limits."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meta_robot.core.arm import ArmState, Pose
from meta_robot.core.geometry import quat_angle, rotvec_to_quat
from meta_robot.safety.layer import Command, CommandMode, CommandRejected, Reason, SafetyLayer
from meta_robot.safety.limits import SafetyLimits

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP pointing down: 180 deg about x
HOME = np.array([0.5, 0.0, 0.3])
LIMITS = SafetyLimits()
DT = 0.01


def state(position=HOME, orientation=DOWN, force=(0.0, 0.0, 0.0), stamp=0.0) -> ArmState:
    return ArmState(
        stamp=stamp,
        joint_positions=np.zeros(7),
        joint_velocities=np.zeros(7),
        tcp_pose=Pose(position, orientation),
        tcp_linear_velocity=np.zeros(3),
        gripper_width=0.08,
        gripper_grasped=False,
        external_force=np.asarray(force, dtype=float),
    )


def command(position=HOME, orientation=DOWN, stamp=0.0, **kw) -> Command:
    fields = dict(
        stamp=stamp,
        frame_id=LIMITS.base_frame,
        mode=CommandMode.ABSOLUTE,
        position=np.asarray(position, dtype=float),
        orientation=np.asarray(orientation, dtype=float),
        gripper_width=0.04,
    )
    fields.update(kw)
    return Command(**fields)


@pytest.fixture
def layer() -> SafetyLayer:
    safety = SafetyLayer(LIMITS)
    safety.update(state(), now=0.0, dt=DT)
    return safety


def test_accepts_a_valid_command_and_tracks_it(layer):
    goal = layer.submit(command(HOME + [0.02, 0, 0]), now=0.0)
    assert np.allclose(goal.pose.position, HOME + [0.02, 0, 0])
    out = layer.update(state(), now=0.01, dt=DT)
    assert out.target is not None and out.hold_reason is None
    assert layer.accepted == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"position": [np.nan, 0.0, 0.3]}, Reason.NON_FINITE),
        ({"position": [0.5, np.inf, 0.3]}, Reason.NON_FINITE),
        ({"gripper_width": float("nan")}, Reason.NON_FINITE),
        ({"stamp": float("nan")}, Reason.NON_FINITE),
        ({"position": [0.5, 0.0]}, Reason.NON_FINITE),
        ({"frame_id": "world"}, Reason.WRONG_FRAME),
        ({"stamp": -1.0}, Reason.STALE),
        ({"stamp": 1.0}, Reason.FROM_FUTURE),
        ({"mode": 7}, Reason.BAD_MODE),
        ({"orientation": [0.0, 0.0, 0.0, 2.0]}, Reason.BAD_QUATERNION),
        ({"orientation": [0.0, 0.0, 0.0, 0.0]}, Reason.BAD_QUATERNION),
        ({"position": [1.5, 0.0, 0.3]}, Reason.OUT_OF_WORKSPACE),
        ({"position": [0.5, 0.0, -0.1]}, Reason.OUT_OF_WORKSPACE),
        ({"position": [0.5, 0.3, 0.3]}, Reason.STEP_TOO_LARGE),
        ({"orientation": rotvec_to_quat([0.0, 0.0, 1.2])}, Reason.STEP_TOO_LARGE),
        ({"gripper_width": 0.2}, Reason.GRIPPER_OUT_OF_RANGE),
        ({"gripper_width": -0.01}, Reason.GRIPPER_OUT_OF_RANGE),
    ],
)
def test_refuses_bad_commands_with_reason(layer, overrides, reason):
    with pytest.raises(CommandRejected) as err:
        layer.submit(command(**overrides), now=0.0)
    assert err.value.reason is reason
    assert layer.rejections[reason.value] == 1
    assert layer.goal is None


def test_refuses_before_any_state():
    with pytest.raises(CommandRejected, match="no arm state"):
        SafetyLayer(LIMITS).submit(command(), now=0.0)


def test_estop_latches_until_reset(layer):
    layer.submit(command(), now=0.0)
    layer.trigger_estop()
    assert layer.update(state(), now=0.01, dt=DT).hold_reason is Reason.ESTOP
    for t in (0.02, 0.5, 5.0):
        with pytest.raises(CommandRejected) as err:
            layer.submit(command(stamp=t), now=t)
        assert err.value.reason is Reason.ESTOP
        assert layer.update(state(), now=t, dt=DT).target is None
    layer.reset_estop()
    assert not layer.estop_active
    assert layer.update(state(), now=5.01, dt=DT).target is None  # still held until a fresh command
    layer.submit(command(stamp=5.02), now=5.02)
    assert layer.update(state(), now=5.03, dt=DT).target is not None


def test_watchdog_holds_when_commands_stop(layer):
    layer.submit(command(HOME + [0.05, 0, 0]), now=0.0)
    assert layer.update(state(), now=0.05, dt=DT).target is not None
    out = layer.update(state(), now=0.05 + LIMITS.watchdog_timeout + 0.01, dt=DT)
    assert out.target is None and out.hold_reason is Reason.WATCHDOG
    assert layer.holds[Reason.WATCHDOG.value] == 1
    # A fresh command resumes from the measured pose, not from the stale setpoint.
    moved = HOME + [0.01, 0, 0]
    layer.submit(command(moved, stamp=1.0), now=1.0)
    out = layer.update(state(position=moved), now=1.0, dt=DT)
    assert np.allclose(out.target.pose.position, moved)


def test_force_limit_holds(layer):
    layer.submit(command(HOME + [0.05, 0, 0]), now=0.0)
    out = layer.update(state(force=(0, 0, LIMITS.max_contact_force + 1)), now=0.01, dt=DT)
    assert out.hold_reason is Reason.FORCE_LIMIT
    out = layer.update(state(force=(np.nan, 0, 0)), now=0.02, dt=DT)
    assert out.hold_reason is Reason.FORCE_LIMIT


def test_setpoint_is_rate_limited(layer):
    layer.submit(command(HOME + [0.09, 0, 0]), now=0.0)
    previous = HOME
    for i in range(1, 30):
        out = layer.update(state(), now=i * 0.001, dt=DT)
        step = np.linalg.norm(out.target.pose.position - previous)
        assert step <= LIMITS.max_linear_speed * DT + 1e-9
        previous = out.target.pose.position
    assert np.allclose(previous, HOME + [29 * LIMITS.max_linear_speed * DT, 0, 0])


def test_delta_commands_compose_on_the_goal(layer):
    layer.submit(command(HOME + [0.02, 0, 0]), now=0.0)
    goal = layer.submit(command([0.0, 0.03, 0.0], orientation=[0, 0, 0, 1], mode=CommandMode.DELTA), now=0.0)
    assert np.allclose(goal.pose.position, HOME + [0.02, 0.03, 0])
    assert quat_angle(goal.pose.orientation, DOWN) < 1e-9


def test_limits_validation():
    with pytest.raises(ValueError, match="below"):
        SafetyLimits(workspace_min=(1, 0, 0), workspace_max=(0, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        SafetyLimits(max_linear_speed=-1)
    with pytest.raises(ValueError, match="unknown safety limit"):
        SafetyLimits.from_mapping({"max_speed": 1.0})
    assert SafetyLimits.from_mapping({"workspace_max": [0.8, 0.5, 0.7]}).workspace_max == (0.8, 0.5, 0.7)


# -- property: nothing a commander sends ever drives the setpoint outside the limits -----------------
finite = st.floats(-2.0, 2.0, allow_nan=False)
wild = st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300]))
positions = st.one_of(
    st.tuples(st.floats(0.2, 0.8), st.floats(-0.5, 0.5), st.floats(-0.05, 0.7)),
    st.tuples(wild, wild, wild),
)
quaternions = st.one_of(
    st.tuples(finite, finite, finite).map(lambda v: tuple(rotvec_to_quat(np.asarray(v) * 0.3))),
    st.tuples(wild, wild, wild, wild),
)
commands = st.builds(
    lambda p, q, stamp_offset, frame, mode, grip: (p, q, stamp_offset, frame, mode, grip),
    positions,
    quaternions,
    st.one_of(st.floats(-0.5, 0.1), st.sampled_from([math.nan, -1e9])),
    st.sampled_from([LIMITS.base_frame, LIMITS.base_frame, "world", ""]),
    st.sampled_from([0, 0, 1, 2]),
    st.one_of(st.floats(-0.05, 0.1), st.sampled_from([math.nan, math.inf])),
)
ticks = st.lists(
    st.tuples(st.one_of(commands, st.none()), st.floats(0.001, 0.2), st.floats(0.0, 60.0)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ticks)
def test_no_command_sequence_leaves_the_limits(sequence):
    safety = SafetyLayer(LIMITS)
    measured = HOME.copy()
    now = 0.0
    previous = None
    for cmd, dt, force in sequence:
        now += dt
        if cmd is not None:
            p, q, offset, frame, mode, grip = cmd
            with contextlib.suppress(CommandRejected):
                safety.submit(Command(now - offset, frame, mode, np.asarray(p), np.asarray(q), grip), now=now)
        out = safety.update(state(measured, force=(0, 0, force)), now=now, dt=dt)
        if out.target is None:
            previous = None
            continue
        target = out.target
        assert np.all(np.isfinite(target.pose.position)) and np.all(np.isfinite(target.pose.orientation))
        assert LIMITS.contains(target.pose.position)
        assert abs(np.linalg.norm(target.pose.orientation) - 1.0) < 1e-6
        assert LIMITS.gripper_min_width <= target.gripper_width <= LIMITS.gripper_max_width
        assert force <= LIMITS.max_contact_force
        reference = previous if previous is not None else measured
        assert np.linalg.norm(target.pose.position - reference) <= LIMITS.max_linear_speed * dt + 1e-9
        previous = target.pose.position
        measured = target.pose.position  # a perfect tracker: the worst case for speed
