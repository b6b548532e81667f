"""Teleop core: devices fed at the device layer (pty bytes, raw HID reports, joystick states), the
twist integrator and the policy/operator arbiter, all with explicit time."""

from __future__ import annotations

import os
import select
import struct
import termios

import numpy as np
import pytest

from meta_robot.core.arm import Pose
from meta_robot.core.geometry import quat_angle, quat_multiply, rotvec_to_quat
from meta_robot.safety.limits import SafetyLimits
from meta_robot.teleop import (
    Arbiter,
    ArbiterConfig,
    DeviceError,
    DeviceNotFoundError,
    EpisodeEventKind,
    Frame,
    GamepadDevice,
    GripperAction,
    IntegratorConfig,
    KeyboardDevice,
    OperatorSample,
    Owner,
    SpaceMouseDevice,
    TargetIntegrator,
    TeleopConfig,
    TopicDevice,
    open_device,
)
from meta_robot.teleop.devices import find_spacemouse, is_spacemouse

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP z axis pointing at the desk
HOME = Pose(np.array([0.5, 0.0, 0.3]), DOWN)


class FakeClock:
    """A settable clock so dead-man timeouts are deterministic."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# -- keyboard through a pty -----------------------------------------------------------------------


@pytest.fixture
def keyboard():
    master, slave = os.openpty()
    clock = FakeClock()
    device = KeyboardDevice(fd=slave, hold_time=0.2, speed_scale=0.5, clock=clock)

    def type_keys(data: bytes) -> None:
        os.write(master, data)
        select.select([slave], [], [], 2.0)  # the pty delivers asynchronously

    try:
        yield device, type_keys, clock, slave
    finally:
        device.close()
        os.close(master)
        os.close(slave)


def test_keyboard_motion_key_holds_deadman_until_hold_time_passes(keyboard):
    device, type_keys, clock, _ = keyboard
    assert not device.read().deadman
    type_keys(b"w")
    sample = device.read()
    assert sample.deadman and sample.twist == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    clock.t += 0.1
    assert device.read().deadman  # still within hold_time (auto-repeat would arrive here)
    clock.t += 0.15
    released = device.read()
    assert not released.deadman and released.twist == (0.0,) * 6


def test_keyboard_axes_arrows_and_split_escape_sequence(keyboard):
    device, type_keys, clock, _ = keyboard
    type_keys(b"dF")  # -y and (uppercase) -z
    assert device.read().twist == (0.0, -1.0, -1.0, 0.0, 0.0, 0.0)
    clock.t += 1.0
    type_keys(b"j")
    assert device.read().twist == (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    clock.t += 1.0
    type_keys(b"\x1b[")  # arrow up, split over two reads
    assert not device.read().deadman
    type_keys(b"A")
    assert device.read().twist == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_keyboard_gripper_events_speed_and_frame(keyboard):
    device, type_keys, _, _ = keyboard
    type_keys(b" ny")
    reads = [device.read() for _ in range(4)]
    assert [s.gripper for s in reads] == [GripperAction.TOGGLE] + [GripperAction.KEEP] * 3
    assert [s.event for s in reads] == [
        EpisodeEventKind.NONE,
        EpisodeEventKind.START_EPISODE,
        EpisodeEventKind.END_SUCCESS,
        EpisodeEventKind.NONE,
    ]
    assert not any(s.deadman for s in reads)  # no motion key, no dead-man
    type_keys(b"x\x7f")
    assert [device.read().event for _ in range(2)] == [EpisodeEventKind.END_FAILURE, EpisodeEventKind.DISCARD]
    type_keys(b"++t")
    sample = device.read()
    assert sample.speed_scale == pytest.approx(0.7) and sample.frame is Frame.EE
    type_keys(b"-------t")
    sample = device.read()
    assert sample.speed_scale == pytest.approx(0.1) and sample.frame is Frame.BASE


def test_keyboard_restores_the_terminal_on_close(keyboard):
    device, _, _, slave = keyboard
    assert not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak while open
    device.close()
    assert termios.tcgetattr(slave)[3] & termios.ICANON


def test_keyboard_without_a_terminal_is_a_clear_error():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(DeviceNotFoundError, match="is not a terminal"):
            KeyboardDevice(fd=read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


# -- SpaceMouse through raw HID reports -----------------------------------------------------------


class FakeHid:
    """A hid.device-like handle handing out queued raw reports (report id first)."""

    def __init__(self) -> None:
        self.reports: list[list[int]] = []
        self.closed = False
        self.fail = False

    def feed(self, report_id: int, *values: int) -> None:
        self.reports.append([report_id, *struct.pack(f"<{len(values)}h", *values)])

    def read(self, max_length: int) -> list[int]:
        if self.fail:
            raise OSError("read error")
        return self.reports.pop(0)[:max_length] if self.reports else []

    def close(self) -> None:
        self.closed = True


def test_spacemouse_translation_and_rotation_reports_map_to_robot_axes():
    hid = FakeHid()
    mouse = SpaceMouseDevice(handle=hid, deadzone=0.1)
    assert not mouse.read().deadman
    hid.feed(1, 0, -350, 0)  # pushed forward (HID y points at the user)
    sample = mouse.read()
    assert sample.deadman and sample.twist == pytest.approx((1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    hid.feed(1, 350, 0, -175)  # pushed right and pulled up (HID z points down)
    hid.feed(2, 0, 0, 350)  # twisted clockwise seen from above (about HID z, down)
    sample = mouse.read()
    half = (0.5 - 0.1) / 0.9  # outside the deadzone the range is rescaled to still reach 1
    assert sample.twist == pytest.approx((0.0, -1.0, half, 0.0, 0.0, -1.0))
    hid.feed(1, 20, -20, 10, 0, 0, 0)  # combined 13-byte report: all within the deadzone
    sample = mouse.read()
    assert not sample.deadman and sample.twist == (0.0,) * 6
    hid.feed(1, 0, 0, 0, 350, 0, 0)  # combined report: rotation about HID x (right)
    assert mouse.read().twist == pytest.approx((0.0, 0.0, 0.0, 0.0, -1.0, 0.0))


def test_spacemouse_buttons_command_the_gripper_and_hold_the_deadman():
    hid = FakeHid()
    mouse = SpaceMouseDevice(handle=hid)
    hid.reports.append([3, 0x01])
    sample = mouse.read()
    assert sample.gripper is GripperAction.CLOSE and sample.deadman
    assert mouse.read().gripper is GripperAction.KEEP  # held, not pressed again
    hid.reports += [[3, 0x00], [3, 0x02]]
    assert mouse.read().gripper is GripperAction.OPEN
    hid.reports.append([3, 0x00])
    assert not mouse.read().deadman
    mouse.close()
    assert hid.closed


def test_spacemouse_read_failure_raises_device_error():
    hid = FakeHid()
    mouse = SpaceMouseDevice(handle=hid)
    hid.fail = True
    with pytest.raises(DeviceError, match="unplugged"):
        mouse.read()


def test_spacemouse_discovery_picks_3dconnexion_devices_only():
    logitech_mouse = {"vendor_id": 0x046D, "product_id": 0xC52B, "path": b"/dev/hidraw0"}
    with pytest.raises(DeviceNotFoundError, match=r"0x046d/0x256f .*udev rule for /dev/hidraw"):
        find_spacemouse(lambda: [logitech_mouse])
    keyboard_if = {"vendor_id": 0x256F, "product_id": 0xC635, "path": b"a", "usage_page": 1, "usage": 6}
    axes_if = {"vendor_id": 0x256F, "product_id": 0xC635, "path": b"b", "usage_page": 1, "usage": 8}
    assert find_spacemouse(lambda: [logitech_mouse, keyboard_if, axes_if])["path"] == b"b"
    old = {"vendor_id": 0x046D, "product_id": 0xC626, "path": b"c"}
    assert find_spacemouse(lambda: [logitech_mouse, old])["path"] == b"c"


def test_missing_spacemouse_is_a_clear_error():
    hid = pytest.importorskip("hid")
    if any(is_spacemouse(info) for info in hid.enumerate()):
        pytest.skip("a SpaceMouse is plugged in here")
    with pytest.raises(DeviceNotFoundError, match="no SpaceMouse found"):
        open_device("spacemouse")


# -- gamepad through an injected joystick ---------------------------------------------------------


class FakeJoystick:
    """A pygame Joystick-like object whose axes and buttons the test sets."""

    def __init__(self, axes: int = 6, buttons: int = 11) -> None:
        self.axes = [0.0] * axes
        self.buttons = [0] * buttons
        self.pumped = 0

    def pump(self) -> None:
        self.pumped += 1

    def get_axis(self, i: int) -> float:
        return self.axes[i]

    def get_button(self, i: int) -> int:
        return self.buttons[i]

    def get_numaxes(self) -> int:
        return len(self.axes)

    def get_numbuttons(self) -> int:
        return len(self.buttons)

    def get_name(self) -> str:
        return "Fake Pad"


def test_gamepad_sticks_deadman_and_buttons():
    pad = FakeJoystick()
    device = GamepadDevice(joystick=pad, pump=pad.pump, deadzone=0.15)
    pad.axes[1] = -1.0  # left stick forward
    pad.axes[3] = 0.05  # right stick resting with drift
    sample = device.read()
    assert not sample.deadman and pad.pumped == 1  # the shoulder button is not held
    pad.buttons[4] = 1  # LB: dead-man
    sample = device.read()
    assert sample.deadman and sample.twist == pytest.approx((1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    pad.axes[4] = -1.0  # right stick up
    pad.axes[0] = 1.0  # left stick right
    pad.buttons[0] = 1  # A
    sample = device.read()
    assert sample.twist == pytest.approx((1.0, -1.0, 1.0, 0.0, 0.0, 0.0))
    assert sample.gripper is GripperAction.TOGGLE
    assert device.read().gripper is GripperAction.KEEP  # A still held: one toggle per press
    pad.buttons[0] = 0
    pad.buttons[7] = 1  # Start
    pad.buttons[5] = 1  # RB: slow
    pad.buttons[1] = 1  # B: frame
    sample = device.read()
    assert sample.event is EpisodeEventKind.START_EPISODE
    assert sample.speed_scale == pytest.approx(0.25) and sample.frame is Frame.EE


def test_gamepad_needs_two_sticks_and_missing_gamepad_is_a_clear_error():
    with pytest.raises(DeviceNotFoundError, match="axes"):
        GamepadDevice(joystick=FakeJoystick(axes=2))
    pygame = pytest.importorskip("pygame")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.joystick.init()
    if pygame.joystick.get_count():
        pytest.skip("a joystick is plugged in here")
    with pytest.raises(DeviceNotFoundError, match="no gamepad found"):
        open_device("gamepad")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="spacemouse"):
        open_device("wiimote")
    with pytest.raises(ValueError, match="keyboard"):
        TeleopConfig(device="wiimote")


# -- topic device ---------------------------------------------------------------------------------


def test_topic_device_queues_actions_and_releases_stale_input():
    clock = FakeClock()
    device = TopicDevice(timeout=0.2, clock=clock)
    assert not device.read().deadman
    device.push(OperatorSample("scripted", True, (0.0, 1.0, 0, 0, 0, 0), gripper=GripperAction.CLOSE))
    device.push(OperatorSample("scripted", True, (0.0, 0.5, 0, 0, 0, 0), event=EpisodeEventKind.END_SUCCESS))
    first, second, third = device.read(), device.read(), device.read()
    assert first.gripper is GripperAction.CLOSE and first.twist[1] == 0.5  # latest state, queued action
    assert second.event is EpisodeEventKind.END_SUCCESS and second.deadman
    assert third.gripper is GripperAction.KEEP and third.event is EpisodeEventKind.NONE
    clock.t += 0.3
    stale = device.read()
    assert not stale.deadman and stale.twist == (0.0,) * 6


# -- integrator -----------------------------------------------------------------------------------


def moving(*twist: float, frame: Frame = Frame.BASE, scale: float = 1.0) -> OperatorSample:
    return OperatorSample("test", True, twist, frame=frame, speed_scale=scale)


def test_integrator_base_frame_and_speed_scaling():
    integrator = TargetIntegrator(IntegratorConfig(max_linear_speed=0.2, default_speed_scale=0.25))
    target = integrator.update(moving(1, 0, -0.5, 0, 0, 0), 0.1, HOME)
    assert target.position == pytest.approx(HOME.position + [0.02, 0.0, -0.01])
    target = integrator.update(moving(0, 1, 0, 0, 0, 0, scale=0.5), 0.1, HOME)
    assert target.position == pytest.approx(HOME.position + [0.02, 0.01, -0.01])
    target = integrator.update(moving(0, 1, 0, 0, 0, 0, scale=0.0), 0.1, HOME)  # 0: default scale
    assert target.position == pytest.approx(HOME.position + [0.02, 0.015, -0.01])
    yawed = integrator.update(moving(0, 0, 0, 0, 0, 1), 0.1, HOME)
    expected = quat_multiply(rotvec_to_quat(np.array([0, 0, 0.08])), DOWN)  # 0.8 rad/s * 0.1 s about base z
    assert quat_angle(yawed.orientation, expected) < 1e-9


def test_integrator_tool_frame_rotates_the_twist_by_the_target_orientation():
    integrator = TargetIntegrator()
    # The tool points down: its +z is the base's -z and its +y the base's -y.
    target = integrator.update(moving(0, 1, 1, 0, 0, 0, frame=Frame.EE), 0.1, HOME)
    assert target.position == pytest.approx(HOME.position + [0.0, -0.015, -0.015])
    target = integrator.update(moving(0, 0, 0, 0, 0, 1, frame=Frame.EE), 0.1, HOME)
    expected = quat_multiply(DOWN, rotvec_to_quat(np.array([0, 0, 0.08])))  # about the tool's own z
    assert quat_angle(target.orientation, expected) < 1e-9
    assert quat_angle(target.orientation, quat_multiply(rotvec_to_quat(np.array([0, 0, -0.08])), DOWN)) < 1e-9


def test_integrator_keeps_the_target_near_a_stalled_arm():
    config = IntegratorConfig(max_lead=0.05, max_lead_angle=0.3)
    integrator = TargetIntegrator(config)
    for _ in range(200):  # 4 s of full speed with an arm that does not move
        target = integrator.update(moving(1, 0, 0, 0, 0, 1), 0.02, HOME)
    assert np.linalg.norm(target.position - HOME.position) == pytest.approx(0.05)
    assert quat_angle(target.orientation, HOME.orientation) == pytest.approx(0.3)


def test_integrator_keeps_the_target_in_the_workspace():
    limits = SafetyLimits()
    integrator = TargetIntegrator(
        IntegratorConfig(workspace_min=limits.workspace_min, workspace_max=limits.workspace_max)
    )
    low = Pose(np.array([0.5, 0.0, 0.01]), DOWN)
    target = integrator.update(moving(0, 0, -1, 0, 0, 0), 0.2, low)
    assert target.position[2] == pytest.approx(limits.workspace_min[2] + 0.005)


def test_integrator_restarts_from_the_arm_on_engage_and_stops_on_release():
    integrator = TargetIntegrator()
    integrator.update(moving(1, 0, 0, 0, 0, 0), 0.1, HOME)
    elsewhere = Pose(HOME.position + [0.01, 0.02, 0.0], DOWN)
    released = integrator.update(OperatorSample("test", False, (1, 0, 0, 0, 0, 0)), 0.1, elsewhere)
    assert released.position == pytest.approx(elsewhere.position)  # stops where the arm is
    drifted = Pose(elsewhere.position + [0.0, 0.0, -0.003], DOWN)
    held = integrator.update(OperatorSample("test", False), 0.1, drifted)
    assert held.position == pytest.approx(elsewhere.position)  # held target, no creeping
    again = Pose(HOME.position + [-0.1, 0.0, 0.0], DOWN)
    engaged = integrator.update(moving(0, 1, 0, 0, 0, 0), 0.1, again)
    assert engaged.position == pytest.approx(again.position + [0.0, 0.015, 0.0])


def test_integrator_gripper_open_close_toggle():
    integrator = TargetIntegrator()
    assert integrator.gripper_width == pytest.approx(0.08)
    for action, width in [
        (GripperAction.TOGGLE, 0.0),
        (GripperAction.TOGGLE, 0.08),
        (GripperAction.CLOSE, 0.0),
        (GripperAction.KEEP, 0.0),
        (GripperAction.OPEN, 0.08),
    ]:
        integrator.update(OperatorSample("test", False, gripper=action), 0.02, HOME)
        assert integrator.gripper_width == pytest.approx(width)
    integrator.reset(gripper_width=0.03)  # closed on an object: toggling opens
    assert integrator.apply_gripper(GripperAction.TOGGLE) == pytest.approx(0.08)


# -- arbiter --------------------------------------------------------------------------------------

IDLE = OperatorSample("spacemouse")
MOVING = OperatorSample("spacemouse", True, (0.0, 0.0, 0.5, 0.0, 0.0, 0.0))


def test_arbiter_operator_takes_over_and_hands_back_after_idle_delay():
    arbiter = Arbiter(ArbiterConfig(handback_delay=1.0, policy_timeout=0.5))
    assert arbiter.on_policy_command(0.0)  # forwarded while the operator is idle
    assert arbiter.on_sample(IDLE, 0.01) is None
    takeover = arbiter.on_sample(MOVING, 0.02)
    assert takeover is not None and takeover.active and takeover.intervention
    assert takeover.owner is Owner.OPERATOR and takeover.device == "spacemouse"
    for t in np.arange(0.03, 2.0, 0.02):  # the policy keeps streaming while the operator moves
        assert not arbiter.on_policy_command(t)
        assert arbiter.on_sample(MOVING, t) is None
    assert arbiter.on_sample(IDLE, 2.0) is None  # released, but not yet for handback_delay
    assert not arbiter.on_policy_command(2.5)
    assert arbiter.on_sample(IDLE, 2.5) is None
    handback = arbiter.on_sample(IDLE, 3.0)
    assert handback is not None and not handback.active and handback.intervention
    assert handback.reason == "deadman released"
    assert arbiter.on_policy_command(3.01)


def test_arbiter_ignores_motion_inside_the_deadzone_and_without_deadman():
    arbiter = Arbiter(ArbiterConfig(deadzone=0.1))
    assert arbiter.on_sample(OperatorSample("pad", True, (0.05, 0.0, 0.0, 0.0, 0.0, -0.08)), 0.0) is None
    assert arbiter.on_sample(OperatorSample("pad", False, (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)), 0.1) is None
    assert arbiter.on_policy_command(0.2)


def test_arbiter_gripper_action_takes_over_and_idle_deadman_hands_back():
    arbiter = Arbiter(ArbiterConfig(handback_delay=0.5))
    transition = arbiter.on_sample(OperatorSample("keyboard", gripper=GripperAction.TOGGLE), 1.0)
    assert transition is not None and transition.active
    assert not transition.intervention  # no policy was commanding: plain teleoperation
    held_still = OperatorSample("keyboard", True)
    assert arbiter.on_sample(held_still, 1.2) is None
    transition = arbiter.on_sample(held_still, 1.5)
    assert transition is not None and transition.reason == "operator idle" and not transition.intervention


def test_arbiter_renewed_motion_postpones_handback():
    arbiter = Arbiter(ArbiterConfig(handback_delay=1.0))
    arbiter.on_policy_command(0.0)
    arbiter.on_sample(MOVING, 0.1)
    assert arbiter.on_sample(IDLE, 0.9) is None
    assert arbiter.on_sample(MOVING, 1.0) is None
    assert arbiter.on_sample(IDLE, 1.9) is None  # 0.9 s since the last motion
    assert arbiter.operator_active
    assert arbiter.on_sample(IDLE, 2.0) is not None


# -- configuration --------------------------------------------------------------------------------


def test_config_refuses_a_lead_the_safety_layer_would_refuse():
    TeleopConfig().check_against(SafetyLimits())
    with pytest.raises(ValueError, match="max_step"):
        TeleopConfig(max_lead=0.2).check_against(SafetyLimits())
    with pytest.raises(ValueError, match="gripper"):
        TeleopConfig(gripper_closed_width=0.09)
    with pytest.raises(ValueError, match="rate"):
        TeleopConfig(rate=0.0)
