"""cffi out-of-line API-mode build of the C core into ``appliance._native``.

Every ``native/*.cdef`` is concatenated into the cdef and every
``native/src/*.c`` is compiled, so a new module only has to be dropped in.
Run directly (``python native/build_native.py``) to build in place for
development; ``pip install .`` runs it through setup.py's ``cffi_modules``.
"""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _rel(path):
    # setuptools wants source paths relative to the project root.
    return os.path.relpath(path, os.path.dirname(HERE))


ffibuilder = FFI()
ffibuilder.cdef("\n".join(open(p).read() for p in sorted(glob.glob(os.path.join(HERE, "*.cdef")))))
ffibuilder.set_source(
    "appliance._native",
    "\n".join(f'#include "{os.path.basename(h)}"' for h in sorted(glob.glob(os.path.join(HERE, "include", "*.h")))),
    sources=[_rel(p) for p in sorted(glob.glob(os.path.join(HERE, "src", "*.c")))],
    include_dirs=[_rel(os.path.join(HERE, "include")), _rel(os.path.join(HERE, "src"))],
    libraries=["pcap", "crypto"],
    extra_compile_args=["-std=c99", "-O2", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    os.chdir(os.path.dirname(HERE))
    ffibuilder.compile(tmpdir=".", verbose=False)
