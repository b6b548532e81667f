"""Check that an episode reads back whole with two independent readers.

rosbags (what the dataset tools use) and the ``mcap`` package (what Foxglove and most MCAP tools use)
must both read every message the recorder counted into ``episode.yaml``; a disagreement means a
truncated or mis-indexed file, which a dataset should learn about before training on it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mcap.reader import make_reader

from meta_robot.dataset.episodes import Episode, EpisodeError, read_messages


@dataclass(frozen=True)
class EpisodeCheck:
    episode_id: str
    recorded: dict[str, int]  # topic -> count in episode.yaml
    rosbags: dict[str, int]
    mcap: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.recorded == self.rosbags == self.mcap

    def __str__(self) -> str:
        if self.ok:
            return (
                f"{self.episode_id}: ok ({sum(self.recorded.values())} messages, {len(self.recorded)} topics)"
            )
        topics = sorted(set(self.recorded) | set(self.rosbags) | set(self.mcap))
        counts = {t: (self.recorded.get(t, 0), self.rosbags.get(t, 0), self.mcap.get(t, 0)) for t in topics}
        diffs = [
            f"{t} recorded {r} rosbags {b} mcap {m}" for t, (r, b, m) in counts.items() if len({r, b, m}) > 1
        ]
        return f"{self.episode_id}: MISMATCH " + "; ".join(diffs)


def check_episode(episode: Episode) -> EpisodeCheck:
    """Count every topic with rosbags and with mcap and compare with the recorder's own counts."""
    recorded = {topic: info.count for topic, info in episode.metadata.topics.items() if info.count}
    by_rosbags = Counter(topic for topic, _, _ in read_messages(episode, raw=True))
    files = sorted(episode.path.glob("*.mcap"))
    if not files:
        raise EpisodeError(f"episode {episode.path}: no .mcap file")
    by_mcap: Counter[str] = Counter()
    for path in files:
        with path.open("rb") as stream:
            for _, channel, _ in make_reader(stream).iter_messages():
                by_mcap[channel.topic] += 1
    return EpisodeCheck(episode.episode_id, recorded, dict(by_rosbags), dict(by_mcap))
