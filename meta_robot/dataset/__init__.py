"""Dataset tools over the recorder's episodes: find and read them, resample them into aligned
steps, summarise them, export them as a LeRobot v3.0 dataset, and serve them to torch."""

from meta_robot.dataset.episodes import Episode, EpisodeError, list_episodes, load_episode, read_messages
from meta_robot.dataset.frames import EpisodeFrames, resample_episode
from meta_robot.dataset.info import DatasetInfo, dataset_info, format_info, plot_info
from meta_robot.dataset.lerobot import LeRobotFormatError, export_lerobot, validate_lerobot_dataset

__all__ = [
    "DatasetInfo",
    "Episode",
    "EpisodeError",
    "EpisodeFrames",
    "LeRobotFormatError",
    "dataset_info",
    "export_lerobot",
    "format_info",
    "list_episodes",
    "load_episode",
    "plot_info",
    "read_messages",
    "resample_episode",
    "validate_lerobot_dataset",
]
