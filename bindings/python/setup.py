"""Build the tachyon-ipc distribution: one C extension, tachyon._tachyon,
that compiles the Tachyon C core (../../src) in, so nothing but a C compiler
is needed. pip builds in the source tree, so the core is found relative to
this file."""
import os
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORE_SRC = os.path.join(ROOT, "src")
CORE_INC = os.path.join(ROOT, "include")
CORE_FILES = sorted(f for f in os.listdir(CORE_SRC) if f.endswith(".c")) if os.path.isdir(CORE_SRC) else []
EXT_FILES = [
    "module.c", "errors.c", "core.c", "bus.c", "guardmeth.c", "txguard.c", "rxguard.c", "batch.c",
    "dlpack.c", "message.c", "rpc.c",
]
EXT_FILES += ["loop.c", "stats.c"]  # event loops (tachyon.aio) and Bus.stats()
EXT_FILES += ["fan.c"]  # fan-out and fan-in (tachyon.FanOut, tachyon.FanIn)

if not os.path.isfile(os.path.join(CORE_INC, "tachyon.h")):
    sys.exit(
        "tachyon-ipc: the C core was not found at %s; build from the Tachyon repository "
        "(pip install ./bindings/python)" % ROOT
    )


def rel(path):
    # setuptools wants paths relative to setup.py's directory.
    return os.path.relpath(path, HERE)


# The core and the extension share one object: the core's two files named
# bus.c would collide in the build directory, so the core's are compiled
# through tiny wrapper units generated under build/.
def core_units():
    out_dir = os.path.join(HERE, "build", "core_units")
    os.makedirs(out_dir, exist_ok=True)
    units = []
    for name in CORE_FILES:
        unit = os.path.join(out_dir, "core_" + name)
        text = '#include "%s"\n' % os.path.join(CORE_SRC, name)
        if not os.path.exists(unit) or open(unit).read() != text:
            with open(unit, "w") as f:
                f.write(text)
        units.append(rel(unit))
    return units


ext = Extension(
    "tachyon._tachyon",
    sources=[rel(os.path.join(HERE, "ext", f)) for f in EXT_FILES] + core_units(),
    include_dirs=[rel(CORE_INC), rel(CORE_SRC), rel(os.path.join(HERE, "ext"))],
    depends=[rel(os.path.join(CORE_SRC, f)) for f in os.listdir(CORE_SRC)]
    + [rel(os.path.join(HERE, "ext", "ext.h"))],
    extra_compile_args=[
        "-std=gnu11",
        "-O2",
        "-fvisibility=hidden",
        "-fno-semantic-interposition",
        "-Wall",
        "-Wno-unused-parameter",
        "-Wno-missing-field-initializers",
    ],
    # Calls from the extension into the core bind inside this object (no PLT).
    extra_link_args=["-Wl,-Bsymbolic"],
)

setup(
    name="tachyon-ipc",
    version="0.1.0",
    description="Zero-copy shared-memory messaging between two processes (Tachyon ABI v4)",
    license="MIT",  # the repository's LICENSE, as the Rust crates declare
    packages=["tachyon"],
    package_data={"tachyon": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    python_requires=">=3.9",
    zip_safe=False,
)
