"""Operator devices (keyboard, SpaceMouse, gamepad, ROS topic) behind one small contract.

A device is polled: :meth:`TeleopDevice.read` never blocks and returns the device's current state as
an :class:`OperatorSample`, the pure-Python mirror of ``meta_robot_interfaces/msg/OperatorInput``.
Twist axes are normalised to [-1, 1] and expressed in the robot's axes (x forward, y left, z up, REP-103)
as seen by an operator standing behind the robot; the teleop node scales them by its speed limits.
One-shot actions (a gripper command, an episode event) are edges: each is returned by exactly one read,
queued if several arrive between two reads, so none is lost at any polling rate.

Nothing here imports rclpy; hardware libraries (hidapi, pygame) are imported only when a device is
opened, and every backend accepts an injected handle so tests drive the real parsing code with raw
bytes, reports or joystick states.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import select
import termios
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class Frame(IntEnum):
    """Frame of the twist axes (OperatorInput.FRAME_*)."""

    BASE = 0
    EE = 1


class GripperAction(IntEnum):
    """OperatorInput.GRIPPER_*."""

    KEEP = 0
    OPEN = 1
    CLOSE = 2
    TOGGLE = 3


class EpisodeEventKind(IntEnum):
    """OperatorInput.EVENT_* (the same numbers as EpisodeEvent's kinds)."""

    NONE = 0
    START_EPISODE = 1
    END_SUCCESS = 2
    END_FAILURE = 3
    DISCARD = 4


ZERO_TWIST = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class OperatorSample:
    """One reading of an operator device (mirrors OperatorInput.msg).

    ``twist`` is (vx, vy, vz, wx, wy, wz), each in [-1, 1]; ``speed_scale`` in (0, 1], 0 meaning "the
    node's default scale".
    """

    device: str
    deadman: bool = False
    twist: tuple[float, float, float, float, float, float] = ZERO_TWIST
    frame: Frame = Frame.BASE
    gripper: GripperAction = GripperAction.KEEP
    event: EpisodeEventKind = EpisodeEventKind.NONE
    speed_scale: float = 0.0

    def __post_init__(self) -> None:
        twist = tuple(max(-1.0, min(1.0, float(v))) for v in self.twist)
        if len(twist) != 6:
            raise ValueError(f"twist must have 6 axes, got {len(twist)}")
        object.__setattr__(self, "twist", twist)
        object.__setattr__(self, "frame", Frame(self.frame))
        object.__setattr__(self, "gripper", GripperAction(self.gripper))
        object.__setattr__(self, "event", EpisodeEventKind(self.event))
        object.__setattr__(self, "speed_scale", max(0.0, min(1.0, float(self.speed_scale))))


class DeviceNotFoundError(RuntimeError):
    """The requested operator device is not there; the message says what was looked for."""


class DeviceError(RuntimeError):
    """An opened device failed (unplugged, read error)."""


class TeleopDevice(abc.ABC):
    """An operator device, polled by the teleop node at its control rate."""

    name: str = "device"
    description: str = ""  # what was opened, for the node's log

    def __init__(self) -> None:
        self._edges: deque[tuple[GripperAction, EpisodeEventKind]] = deque(maxlen=32)

    @abc.abstractmethod
    def read(self) -> OperatorSample:
        """The device's current state; never blocks."""

    def close(self) -> None:
        """Release the device (restore the terminal, close the handle)."""
        return None

    # One-shot actions are queued and handed out one per read.
    def _push_edge(self, gripper: GripperAction = GripperAction.KEEP, event=EpisodeEventKind.NONE) -> None:
        if gripper is not GripperAction.KEEP or event is not EpisodeEventKind.NONE:
            self._edges.append((gripper, event))

    def _pop_edge(self) -> tuple[GripperAction, EpisodeEventKind]:
        return self._edges.popleft() if self._edges else (GripperAction.KEEP, EpisodeEventKind.NONE)

    def __enter__(self) -> TeleopDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _deadzone(value: float, deadzone: float) -> float:
    """Zero inside the deadzone, rescaled outside it so the output still spans [-1, 1]."""
    if abs(value) <= deadzone:
        return 0.0
    sign = 1.0 if value > 0 else -1.0
    return sign * min(1.0, (abs(value) - deadzone) / (1.0 - deadzone))


# -- keyboard -------------------------------------------------------------------------------------

# key -> (axis, sign); axes 0..5 = x, y, z, roll, pitch, yaw. Arrow keys alias x/y.
KEY_AXES: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0),
    "u": (3, 1.0), "o": (3, -1.0),
    "i": (4, 1.0), "k": (4, -1.0),
    "j": (5, 1.0), "l": (5, -1.0),
    "\x1b[A": (0, 1.0), "\x1b[B": (0, -1.0),
    "\x1b[D": (1, 1.0), "\x1b[C": (1, -1.0),
}  # fmt: skip
KEY_EVENTS: dict[str, EpisodeEventKind] = {
    "n": EpisodeEventKind.START_EPISODE,
    "y": EpisodeEventKind.END_SUCCESS,
    "x": EpisodeEventKind.END_FAILURE,
    "\x7f": EpisodeEventKind.DISCARD,  # backspace (DEL), as most terminals send it
    "\x08": EpisodeEventKind.DISCARD,  # backspace (BS), as some terminals send it
}
KEYBOARD_HELP = (
    "keyboard teleop: w/s +x/-x, a/d +y/-y, r/f +z/-z (arrows: x/y), u/o roll, i/k pitch, j/l yaw, "
    "space gripper open/close, +/- speed, t base/tool frame, n start episode, y success, x failure, "
    "backspace discard; hold a motion key to move (releasing it stops the arm)"
)
SPEED_STEP = 0.1


class KeyboardDevice(TeleopDevice):
    """Keys in a plain terminal (no X server): cbreak mode on a tty, polled with select.

    A terminal reports key presses, never key releases, so the dead-man is "a motion key was seen in
    the last ``hold_time`` s": while a key is held the terminal's auto-repeat keeps re-sending it and
    the arm keeps moving; ``hold_time`` after the key is let go the dead-man drops and the arm stops.
    Auto-repeat starts only after its initial delay (often 250-600 ms, longer than ``hold_time``), so
    a held key moves the arm for ``hold_time``, pauses, then moves smoothly; shorten the delay with
    ``kbdrate -d 250`` (console) or ``xset r rate 200 30`` (X) if the pause bothers you. Only the last
    pressed key repeats, so combined motions fade to the last key pressed. Ctrl-C still interrupts
    (cbreak keeps signals). ``fd`` defaults to stdin; tests pass the slave end of a pty.
    """

    name = "keyboard"

    def __init__(
        self,
        fd: int | None = None,
        hold_time: float = 0.2,
        speed_scale: float = 0.5,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__()
        self.fd = 0 if fd is None else fd
        if not os.isatty(self.fd):
            where = "stdin" if fd is None else f"fd {self.fd}"
            raise DeviceNotFoundError(
                f"no keyboard: {where} is not a terminal (run the teleop node in the foreground of a "
                "terminal, or pick device spacemouse, gamepad or topic)"
            )
        if hold_time <= 0:
            raise ValueError(f"hold_time must be > 0 s, got {hold_time}")
        self.hold_time = hold_time
        self.clock = clock
        self.speed_scale = min(1.0, max(SPEED_STEP, speed_scale))
        self.frame = Frame.BASE
        self._last_seen: dict[int, tuple[float, float]] = {}  # axis -> (time, sign)
        self._pending = ""
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        logger.info(KEYBOARD_HELP)

    def close(self) -> None:
        """Restore the terminal as it was."""
        if self._saved is not None:
            with contextlib.suppress(termios.error):  # the terminal may be gone already
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _drain(self) -> str:
        chunks = []
        while select.select([self.fd], [], [], 0.0)[0]:
            try:
                data = os.read(self.fd, 1024)
            except OSError as exc:
                raise DeviceError(f"keyboard read failed: {exc}") from exc
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode("latin-1")

    def _keys(self, text: str) -> Iterable[str]:
        """Split input into keys; escape sequences (arrows) are one key, an unfinished one waits."""
        text = self._pending + text
        self._pending = ""
        i = 0
        while i < len(text):
            if text[i] == "\x1b":
                if i + 1 >= len(text):
                    self._pending = text[i:]
                    return
                if text[i + 1] in "[O":
                    j = i + 2
                    while j < len(text) and not ("\x40" <= text[j] <= "\x7e"):
                        j += 1
                    if j >= len(text):
                        self._pending = text[i:]
                        return
                    yield "\x1b[" + text[j] if j == i + 2 else text[i : j + 1]
                    i = j + 1
                    continue
                i += 1  # a lone ESC: ignored
                continue
            yield text[i]
            i += 1

    def handle_key(self, key: str, now: float) -> None:
        """Apply one key press at time ``now``."""
        lower = key.lower() if len(key) == 1 else key
        if lower in KEY_AXES:
            axis, sign = KEY_AXES[lower]
            self._last_seen[axis] = (now, sign)
        elif key == " ":
            self._push_edge(gripper=GripperAction.TOGGLE)
        elif key in "+=":
            self.speed_scale = min(1.0, round(self.speed_scale + SPEED_STEP, 3))
            logger.info("keyboard speed scale %.1f", self.speed_scale)
        elif key in "-_":
            self.speed_scale = max(SPEED_STEP, round(self.speed_scale - SPEED_STEP, 3))
            logger.info("keyboard speed scale %.1f", self.speed_scale)
        elif lower == "t":
            self.frame = Frame.EE if self.frame is Frame.BASE else Frame.BASE
            logger.info("keyboard twist frame: %s", self.frame.name)
        elif lower in KEY_EVENTS:
            self._push_edge(event=KEY_EVENTS[lower])

    def read(self) -> OperatorSample:
        """Consume typed keys and report which motion keys are still (by auto-repeat) held."""
        now = self.clock()
        for key in self._keys(self._drain()):
            self.handle_key(key, now)
        twist = [0.0] * 6
        for axis, (seen, sign) in list(self._last_seen.items()):
            if now - seen <= self.hold_time:
                twist[axis] = sign
            else:
                del self._last_seen[axis]
        gripper, event = self._pop_edge()
        return OperatorSample(
            device=self.name,
            deadman=bool(self._last_seen),
            twist=tuple(twist),
            frame=self.frame,
            gripper=gripper,
            event=event,
            speed_scale=self.speed_scale,
        )


# -- SpaceMouse -----------------------------------------------------------------------------------

SPACEMOUSE_VENDORS = (0x046D, 0x256F)  # Logitech (older 3Dconnexion devices), 3Dconnexion
SPACEMOUSE_FULL_SCALE = 350.0  # raw counts at full deflection on every current model
# 3Dconnexion HID axes are x right, y towards the user, z down; the robot's (operator behind the
# robot, facing the same way) are x forward, y left, z up. This proper rotation maps one onto the
# other for translations and rotations alike: robot = (-y, -x, -z).
SPACEMOUSE_AXIS_MAP = ((1, -1.0), (0, -1.0), (2, -1.0))


class HidHandle(Protocol):
    """What SpaceMouseDevice needs of a ``hid.device`` (cython-hidapi)."""

    def read(self, max_length: int) -> Sequence[int]: ...

    def close(self) -> None: ...


def is_spacemouse(info: dict[str, Any]) -> bool:
    """Whether a ``hid.enumerate()`` entry is a 3Dconnexion 6-DoF device."""
    vendor, product = int(info.get("vendor_id", 0)), int(info.get("product_id", 0))
    if vendor == 0x256F:
        return True
    # Under Logitech's vendor id only the 0xc6xx products are 3Dconnexion's (not mice or keyboards).
    return vendor == 0x046D and 0xC600 <= product <= 0xC6FF


def find_spacemouse(enumerate_hid: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """The first SpaceMouse among HID devices, preferring its multi-axis interface; else raise."""
    found = [info for info in enumerate_hid() if is_spacemouse(info)]
    if not found:
        raise DeviceNotFoundError(
            "no SpaceMouse found: looked for HID devices with vendor 0x046d/0x256f (3Dconnexion); is it "
            "plugged in and readable (udev rule for /dev/hidraw*)?"
        )
    # Generic desktop (usage page 1) / multi-axis controller (usage 8) is the 6-DoF interface.
    found.sort(key=lambda i: (i.get("usage_page"), i.get("usage")) != (1, 8))
    return found[0]


def _int16(low: int, high: int) -> int:
    value = low | (high << 8)
    return value - 0x10000 if value & 0x8000 else value


class SpaceMouseDevice(TeleopDevice):
    """A 3Dconnexion SpaceMouse read through hidapi.

    Reports: id 1 = translation (3 x int16 little-endian), id 2 = rotation, or id 1 with all six
    axes (13 bytes) on newer devices; id 3 = buttons (bit 0 left, bit 1 right). The device reports
    only changes, so the last values stand until the next report (it sends zeros when let go). The
    dead-man is "any axis beyond ``deadzone``, or a button held". Left button closes the gripper,
    right button opens it (as in SERL). Pass ``handle`` (any object with ``read(n)`` and ``close()``)
    to skip hidapi, as tests do.
    """

    name = "spacemouse"

    def __init__(
        self,
        handle: HidHandle | None = None,
        deadzone: float = 0.1,
        speed_scale: float = 0.0,
        max_reports: int = 64,
    ) -> None:
        super().__init__()
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        self.deadzone = deadzone
        self.speed_scale = speed_scale
        self.max_reports = max_reports
        self._raw = [0.0] * 6  # HID axes x, y, z, rx, ry, rz normalised
        self._buttons = 0
        self.handle = handle if handle is not None else self._open()

    def _open(self) -> HidHandle:
        try:
            import hid
        except ImportError as exc:
            raise DeviceNotFoundError(f"no SpaceMouse: hidapi is not installed ({exc})") from exc
        info = find_spacemouse(hid.enumerate)
        device = hid.device()
        try:
            device.open_path(info["path"])
        except OSError as exc:
            path = info["path"].decode(errors="replace") if isinstance(info["path"], bytes) else info["path"]
            raise DeviceNotFoundError(
                f"SpaceMouse {info.get('product_string') or ''} at {path} found but cannot be opened "
                f"({exc}); a udev rule must make /dev/hidraw* readable"
            ) from exc
        device.set_nonblocking(True)
        self.description = (
            f"SpaceMouse found: {info.get('product_string') or 'unnamed'} "
            f"(vendor 0x{info['vendor_id']:04x} product 0x{info['product_id']:04x})"
        )
        logger.info(self.description)
        return device

    def close(self) -> None:
        """Close the HID handle."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None  # type: ignore[assignment]

    def handle_report(self, report: Sequence[int]) -> None:
        """Apply one raw HID report (report id first)."""
        if not report:
            return
        rid = report[0]
        values = [
            _int16(report[i], report[i + 1]) / SPACEMOUSE_FULL_SCALE for i in range(1, len(report) - 1, 2)
        ]
        if rid == 1 and len(values) >= 6:
            self._raw = values[:6]
        elif rid == 1 and len(values) >= 3:
            self._raw[0:3] = values[:3]
        elif rid == 2 and len(values) >= 3:
            self._raw[3:6] = values[:3]
        elif rid == 3 and len(report) >= 2:
            pressed = report[1] & ~self._buttons
            if pressed & 0x01:
                self._push_edge(gripper=GripperAction.CLOSE)
            if pressed & 0x02:
                self._push_edge(gripper=GripperAction.OPEN)
            self._buttons = report[1]

    def read(self) -> OperatorSample:
        """Apply every report waiting in the device and return the resulting state."""
        if self.handle is None:
            raise DeviceError("SpaceMouse is closed")
        for _ in range(self.max_reports):
            try:
                report = self.handle.read(64)
            except (OSError, ValueError) as exc:
                raise DeviceError(f"SpaceMouse read failed (unplugged?): {exc}") from exc
            if not report:
                break
            self.handle_report(report)
        axes = [max(-1.0, min(1.0, v)) for v in self._raw]
        twist = [0.0] * 6
        for offset in (0, 3):
            for out, (src, sign) in enumerate(SPACEMOUSE_AXIS_MAP):
                twist[offset + out] = sign * _deadzone(axes[offset + src], self.deadzone)
        gripper, event = self._pop_edge()
        return OperatorSample(
            device=self.name,
            deadman=any(v != 0.0 for v in twist) or self._buttons != 0,
            twist=tuple(twist),
            gripper=gripper,
            event=event,
            speed_scale=self.speed_scale,
        )


# -- gamepad --------------------------------------------------------------------------------------


class Joystick(Protocol):
    """What GamepadDevice needs of a ``pygame.joystick.Joystick``."""

    def get_axis(self, index: int) -> float: ...

    def get_button(self, index: int) -> int: ...

    def get_numaxes(self) -> int: ...

    def get_numbuttons(self) -> int: ...

    def get_name(self) -> str: ...


@dataclass(frozen=True)
class GamepadMapping:
    """Axis and button indices; the defaults are an Xbox-style pad under SDL on Linux.

    Left stick: forward/back -> x, left/right -> y; right stick: up/down -> z, left/right -> yaw.
    Hold the left shoulder button (dead-man) to move.
    """

    axis_x: int = 1  # left stick vertical (pushed forward reads negative)
    axis_y: int = 0  # left stick horizontal (right reads positive)
    axis_z: int = 4  # right stick vertical
    axis_yaw: int = 3  # right stick horizontal
    deadman: int = 4  # LB
    gripper_toggle: int = 0  # A
    frame_toggle: int = 1  # B
    end_failure: int = 2  # X
    end_success: int = 3  # Y
    speed_down: int = 5  # RB held = fine (slow) motion
    discard: int = 6  # Back / View
    start_episode: int = 7  # Start / Menu


class GamepadDevice(TeleopDevice):
    """A gamepad through pygame's joystick module, headless (``SDL_VIDEODRIVER=dummy``).

    Pass ``joystick`` (and ``pump``, which refreshes its state) to drive it without SDL, as tests do.
    """

    name = "gamepad"

    def __init__(
        self,
        joystick: Joystick | None = None,
        pump: Callable[[], None] | None = None,
        mapping: GamepadMapping | None = None,
        deadzone: float = 0.15,
        index: int = 0,
        slow_scale: float = 0.25,
    ) -> None:
        super().__init__()
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        self.mapping = mapping or GamepadMapping()
        self.deadzone = deadzone
        self.slow_scale = slow_scale
        self.frame = Frame.BASE
        self._pygame = None
        if joystick is None:
            joystick, pump = self._open(index)
        self.joystick = joystick
        self.pump = pump or (lambda: None)
        self._buttons: dict[int, bool] = {}
        needed = max(self.mapping.axis_x, self.mapping.axis_y, self.mapping.axis_z, self.mapping.axis_yaw)
        if joystick.get_numaxes() <= needed:
            raise DeviceNotFoundError(
                f"gamepad '{joystick.get_name()}' has {joystick.get_numaxes()} axes; the mapping needs "
                f"{needed + 1} (two sticks)"
            )

    def _open(self, index: int) -> tuple[Joystick, Callable[[], None]]:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
        try:
            import pygame
        except ImportError as exc:
            raise DeviceNotFoundError(f"no gamepad: pygame is not installed ({exc})") from exc
        pygame.display.init()  # the event pump that refreshes joysticks needs the (dummy) video system
        pygame.joystick.init()
        count = pygame.joystick.get_count()
        if count <= index:
            pygame.quit()
            raise DeviceNotFoundError(
                f"no gamepad found: pygame (SDL) sees {count} joystick(s), wanted index {index}; is it "
                "plugged in and readable (/dev/input/event*, /dev/input/js*)?"
            )
        joystick = pygame.joystick.Joystick(index)
        joystick.init()
        self._pygame = pygame
        self.description = f"gamepad found: {joystick.get_name()} ({joystick.get_numaxes()} axes)"
        logger.info(self.description)
        return joystick, pygame.event.pump

    def close(self) -> None:
        """Shut SDL down if this device started it."""
        if self._pygame is not None:
            self._pygame.quit()
            self._pygame = None

    def _pressed(self, index: int) -> bool:
        """True once per press of button ``index`` (a rising edge)."""
        if index >= self.joystick.get_numbuttons():
            return False
        down = bool(self.joystick.get_button(index))
        was = self._buttons.get(index, False)
        self._buttons[index] = down
        return down and not was

    def _held(self, index: int) -> bool:
        return index < self.joystick.get_numbuttons() and bool(self.joystick.get_button(index))

    def read(self) -> OperatorSample:
        """Refresh the pad's state and map sticks and buttons to a sample."""
        try:
            self.pump()
        except Exception as exc:  # SDL errors come as pygame.error
            raise DeviceError(f"gamepad read failed: {exc}") from exc
        m = self.mapping

        def axis(index: int) -> float:
            return _deadzone(max(-1.0, min(1.0, float(self.joystick.get_axis(index)))), self.deadzone)

        # Stick "forward"/"up" reads negative under SDL; the robot's +x/+z are forward/up, +y/+yaw left.
        twist = (-axis(m.axis_x), -axis(m.axis_y), -axis(m.axis_z), 0.0, 0.0, -axis(m.axis_yaw))
        if self._pressed(m.gripper_toggle):
            self._push_edge(gripper=GripperAction.TOGGLE)
        if self._pressed(m.frame_toggle):
            self.frame = Frame.EE if self.frame is Frame.BASE else Frame.BASE
            logger.info("gamepad twist frame: %s", self.frame.name)
        for button, event in (
            (m.start_episode, EpisodeEventKind.START_EPISODE),
            (m.end_success, EpisodeEventKind.END_SUCCESS),
            (m.end_failure, EpisodeEventKind.END_FAILURE),
            (m.discard, EpisodeEventKind.DISCARD),
        ):
            if self._pressed(button):
                self._push_edge(event=event)
        gripper, event = self._pop_edge()
        return OperatorSample(
            device=self.name,
            deadman=self._held(m.deadman),
            twist=twist,
            frame=self.frame,
            gripper=gripper,
            event=event,
            speed_scale=self.slow_scale if self._held(m.speed_down) else 0.0,
        )


# -- topic ----------------------------------------------------------------------------------------


@dataclass
class _Received:
    sample: OperatorSample
    at: float


class TopicDevice(TeleopDevice):
    """Samples that arrive from elsewhere (OperatorInput messages: the scripted sim operator, a remote
    device). The node pushes each message in; a sample older than ``timeout`` counts as released, so
    motion stops if the sender dies or the link drops."""

    name = "topic"

    def __init__(self, timeout: float = 0.2, clock: Clock = time.monotonic) -> None:
        super().__init__()
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout}")
        self.timeout = timeout
        self.clock = clock
        self._latest: _Received | None = None

    def push(self, sample: OperatorSample) -> None:
        """Take one received sample; its one-shot actions are queued, its state replaces the last."""
        self._push_edge(sample.gripper, sample.event)
        self._latest = _Received(
            replace(sample, gripper=GripperAction.KEEP, event=EpisodeEventKind.NONE), self.clock()
        )

    def read(self) -> OperatorSample:
        """The latest received state (released if stale) with the next queued action."""
        gripper, event = self._pop_edge()
        latest = self._latest
        if latest is None:
            return OperatorSample(device=self.name, gripper=gripper, event=event)
        sample = latest.sample
        if self.clock() - latest.at > self.timeout:
            sample = replace(sample, deadman=False, twist=ZERO_TWIST)
        return replace(sample, gripper=gripper, event=event)


DEVICES = ("keyboard", "spacemouse", "gamepad", "topic")


@dataclass(frozen=True)
class DeviceOptions:
    """What opening a device may need; each backend takes the fields it uses."""

    deadzone: float = 0.1
    keyboard_hold: float = 0.2
    speed_scale: float = 0.5
    input_timeout: float = 0.2
    gamepad_index: int = 0
    clock: Clock = field(default=time.monotonic)


def open_device(kind: str, options: DeviceOptions | None = None) -> TeleopDevice:
    """Open the named device; raise DeviceNotFoundError (saying what was looked for) if it is absent."""
    options = options or DeviceOptions()
    if kind == "keyboard":
        return KeyboardDevice(
            hold_time=options.keyboard_hold, speed_scale=options.speed_scale, clock=options.clock
        )
    if kind == "spacemouse":
        return SpaceMouseDevice(deadzone=options.deadzone)
    if kind == "gamepad":
        return GamepadDevice(deadzone=options.deadzone, index=options.gamepad_index)
    if kind == "topic":
        return TopicDevice(timeout=options.input_timeout, clock=options.clock)
    raise ValueError(f"unknown teleop device '{kind}'; choose one of {', '.join(DEVICES)}")
