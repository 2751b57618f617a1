"""User-facing errors: reported as one line on stderr with exit status 2, never a traceback."""


class UserError(Exception):
    """Bad input from the user (scenario, parameter, data files). ``where`` names the file and/or key."""

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class PortError(Exception):
    """Raised by a block's ``setup`` when its inputs do not fit; the engine adds the scenario key."""


class ParamError(ValueError):
    """Raised by a block when one parameter is wrong (e.g. it differs from its paired block's); the engine
    names ``params.<param>`` of the block's YAML key."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(message)
