"""User-facing errors: one type per kind of bad input, each message names the file/line or config key."""


class UnitrackError(Exception):
    """Base for errors the CLI prints as one clear line instead of a traceback."""


class DatasetError(UnitrackError, ValueError):
    """A dataset on disk is not in the layout/format its reader expects."""

    def __init__(self, path, what: str, line: int | None = None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {what}")
        self.path, self.line = path, line


class ConfigError(UnitrackError, ValueError):
    """A config value is invalid; names the key."""

    def __init__(self, key: str, what: str):
        super().__init__(f"config key '{key}': {what}")
        self.key = key


class ResultsError(UnitrackError, ValueError):
    """A tracker result file is missing or malformed."""

    def __init__(self, path, what: str, line: int | None = None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {what}")
        self.path, self.line = path, line


class UnsafeFileError(ConfigError):
    """A checkpoint or weights file that could only be read by running code from it (a pickle asking for a
    global outside torch's weights-only set): refused, never loaded."""

    def __init__(self, key: str, path, wants: str):
        super().__init__(key, f"{path} is refused: reading it would unpickle `{wants}`, which can run any code; "
                         "unitrack reads checkpoints as data only (tensors, numbers, strings, lists, dicts: "
                         "torch.load weights_only=True) -- ask for its state dict or a `unitrack export` folder")
        self.path, self.wants = path, wants
