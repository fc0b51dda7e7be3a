"""Base class of lavaplast's Lava processes."""

from lava.magma.core.process.process import AbstractProcess


class CheckedProcess(AbstractProcess):
    """An ``AbstractProcess`` that may reject its arguments before initialising.

    Lava's ``__del__`` assumes a fully initialised process; a constructor
    that raises ``ValueError`` first would otherwise print an ignored
    ``AttributeError`` when the half-built object is collected.
    """

    def __del__(self):
        if "_runtime" in self.__dict__:
            super().__del__()
