"""Open, procedurally generated articulated objects (no licensed asset): ``open_object(name)`` builds
one of ``OPEN_OBJECTS``."""

from hogsa.open_objects.catalogue import OPEN_OBJECTS, open_object

__all__ = ["OPEN_OBJECTS", "open_object"]
