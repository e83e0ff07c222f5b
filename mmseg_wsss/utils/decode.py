"""What image decoders print: libjpeg and libpng report corrupt data on the
process's stderr (file descriptor 2), not through OpenCV or PIL, so a JPEG
with damaged data bytes decodes "fine" with garbage in it and a line such as
``Corrupt JPEG data: 3 extraneous bytes before marker 0xd9`` that no log
keeps."""
import contextlib
import os
import tempfile
from typing import List

import cv2
import numpy as np


@contextlib.contextmanager
def capture_fd2(into: List[str]):
    """Redirect file descriptor 2 to a temporary file inside the block and
    append what was written there (stripped, may be empty) to ``into``.

    Process-wide while it lasts: keep the block short (one decode)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            into.append(tmp.read().decode(errors='replace').strip())


def decode_with_messages(buf: np.ndarray, flag=cv2.IMREAD_UNCHANGED):
    """``cv2.imdecode(buf, flag)`` and what the decoder printed."""
    out: List[str] = []
    with capture_fd2(out):
        img = cv2.imdecode(buf, flag)
    return img, out[0] if out else ''
