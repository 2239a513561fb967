import json
import os


def load_config(path):
    """Read the JSON config file at path, or return defaults."""
    if not os.path.exists(path):
        return {"host": "127.0.0.1", "port": 8080, "threads": 4}
    with open(path) as f:
        config = json.load(f)
    config.setdefault("host", "127.0.0.1")
    config.setdefault("port", 8080)
    config.setdefault("threads", 4)
    return config


def save_config(path, config):
    """Write config to path as pretty JSON."""
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def merge_configs(base, override):
    """Values in override win over those in base."""
    merged = dict(base)
    for key, value in override.items():
        if value is not None:
            merged[key] = value
    return merged


def describe(config):
    """One line for the log."""
    return f"{config['host']}:{config['port']} with {config['threads']} threads"
