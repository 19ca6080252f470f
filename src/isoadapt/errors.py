"""One exception type for every problem a user can fix; the CLI prints it as one line and exits 2."""


class InputError(Exception):
    """Bad input: a missing or malformed file, an invalid record, or an invalid setting.

    The message names the file (or flag), the record, and what is wrong, on one line.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
