"""The chapter "初始化模型参数" as a test: every code cell, ported to ``app.engine``.

The chapter (with outputs recorded from real MXNet) is the project's seed; GLUON_SEMANTICS.md
§1 says every random number it prints is a window of one stream, ``mt19937(0)`` state 0, at the
raw-stream offsets x=0, n=4 weights=15, n=17 weight=269, n=48 MyInit=387, n=54=415, n=66=417 and
n=80=489 (the author ran cells out of order). Naming counters and the random stream are
process-global, so each scenario whose printed text matters runs in a FRESH ``python -c``
process; the tests then compare the printed text with the chapter's, character for character.

A cell's code is kept as the chapter wrote it, with only the imports changed
(``mxnet`` → ``app.engine``); lines added by the test are marked ``# test:``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_py(code: str, timeout: float = 120) -> tuple[str, str]:
    """Run ``code`` with ``python -c`` in a fresh process at the checkout root; (stdout, stderr).

    The process gets the default warning filters (a stray PYTHONWARNINGS is dropped), so
    warnings print as a user sees them."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + extra if extra else "")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"script failed:\n{proc.stderr}"
    return proc.stdout, proc.stderr


def sections(text: str) -> dict[str, str]:
    """Split output at marker lines ``@@name`` into {name: text printed after it}; what came
    before the first marker is under ``""``."""
    parts = re.split(r"^@@(\S+)\n", text, flags=re.M)
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2]))}


def numbers(text: str) -> np.ndarray:
    """Every number of a printed NDArray (its ``<NDArray 4x5 @cpu(0)>`` footer left out)."""
    body = re.sub(r"<NDArray [^>]*>", "", text)
    return np.array([float(t) for t in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", body)])


# Shared by the scripts: the chapter's get_net (cell n=1) and MyInit (cell n=77) verbatim, a
# stream positioner and a marker printer.
PRELUDE = r'''
import sys, json
from app.engine import random as R                      # test: the engine's MXNet-exact stream
def at(offset):                                           # test: move state 0 to a raw offset
    while offset:                                         # (draws of <= 64 all come from state 0)
        n = min(offset, 64); R.raw_u32(n); offset -= n
def mark(name):                                           # test: section markers
    sys.stdout.flush(); sys.stderr.flush()
    print("@@" + name, flush=True); sys.stderr.write("@@" + name + "\n"); sys.stderr.flush()
def dump(name, arr):                                      # test: exact values for numeric checks
    print("@@json_" + name); print(json.dumps(arr.asnumpy().astype("float64").tolist()))

from app.engine.gluon import nn
from app.engine import nd

def get_net():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(2))
    return net

from app.engine import init

class MyInit(init.Initializer):#class mxnet.initializer.Initializer??重载 init=..也会重载??
    def __init__(self):
        super(MyInit, self).__init__()
        self._verbose = True
    def _init_weight(self, _, arr):
        # 初始化权重，使用out=arr后我们不需指定形状
        #print('init weight', arr.shape)
        nd.random.uniform(low=5, high=10, out=arr)
    def _init_bias(self, _, arr):
        #print('init_bias',arr.shape)
        arr[:] = 1.0
        #print('init_bias',arr.shape)
'''

# ---------------------------------------------------------------------------- recorded outputs
UNINIT_CHAPTER = (
    "Parameter sequential0_dense0_weight has not been initialized. Note that you should "
    "initialize parameters and create Trainer with Block.collect_params() instead of "
    "Block.params because the later does not include Parameters of nested child Blocks")
UNINIT_191 = UNINIT_CHAPTER.replace("Parameter sequential0_dense0_weight",
                                    "Parameter 'sequential0_dense0_weight'")

OUT_N4 = ("\n[[0.00212593 0.00365805]\n [0.00161272 0.00441845]\n [0.00204872 0.00352518]]\n"
          "<NDArray 3x2 @cpu(0)>")
OUT_N5 = ("name:  sequential0_dense0 \nweight:  Parameter sequential0_dense0_weight "
          "(shape=(4, 5), dtype=<class 'numpy.float32'>) \nbias:  Parameter "
          "sequential0_dense0_bias (shape=(4,), dtype=<class 'numpy.float32'>)\n")
W_N4 = ("\n[[-0.06206018  0.06491279 -0.03182812 -0.01631819 -0.00312688]\n"
        " [ 0.0408415   0.04370362  0.00404529 -0.0028032   0.00952624]\n"
        " [-0.01501013  0.05958354  0.04705103 -0.06005495 -0.02276454]\n"
        " [-0.0578019   0.02074406 -0.06716943 -0.01844618  0.04656678]]\n<NDArray 4x5 @cpu(0)>")
ZEROS_4X5 = ("\n[[0. 0. 0. 0. 0.]\n [0. 0. 0. 0. 0.]\n [0. 0. 0. 0. 0.]\n [0. 0. 0. 0. 0.]]\n"
             "<NDArray 4x5 @cpu(0)>")
ZEROS_4 = "\n[0. 0. 0. 0.]\n<NDArray 4 @cpu(0)>"
OUT_N6 = (f"weight: {W_N4}\nweight gradient {ZEROS_4X5}\nbias: {ZEROS_4}\n"
          f"bias gradient {ZEROS_4}\n")


def params_repr(n: int, w0: str, w1: str) -> str:
    p = f"sequential{n}_"
    return (f"{p} (\n"
            f"  Parameter {p}dense0_weight (shape={w0}, dtype=<class 'numpy.float32'>)\n"
            f"  Parameter {p}dense0_bias (shape=(4,), dtype=<class 'numpy.float32'>)\n"
            f"  Parameter {p}dense1_weight (shape={w1}, dtype=<class 'numpy.float32'>)\n"
            f"  Parameter {p}dense1_bias (shape=(2,), dtype=<class 'numpy.float32'>)\n)")


OUT_N7 = f"{params_repr(0, '(4, 5)', '(2, 4)')}\n{ZEROS_4}\n{W_N4}\n"
OUT_N8 = f"{params_repr(0, '(4, 5)', '(2, 4)')}\n"
ONES_4X5 = ("\n[[1. 1. 1. 1. 1.]\n [1. 1. 1. 1. 1.]\n [1. 1. 1. 1. 1.]\n [1. 1. 1. 1. 1.]]\n"
            "<NDArray 4x5 @cpu(0)>")
OUT_N16_ONE = f"{ONES_4X5} {ZEROS_4}\n"
OUT_N15 = ("\n[[-0.01884949  0.02661467 -0.00985822 -0.01562379  0.02966928]\n"
           " [-0.00744103  0.00702562  0.00869039 -0.03277136  0.02082133]\n"
           " [-0.03126733  0.00902533  0.03002612  0.00334209 -0.02473557]\n"
           " [-0.01115702  0.02362529 -0.00702631  0.01340065 -0.03474445]]\n"
           "<NDArray 4x5 @cpu(0)> \n[0. 0. 0. 0.]\n<NDArray 4 @cpu(0)>\n")
OUT_N17 = ("default weight: \n[[-0.02043347  0.01272219  0.00725428  0.01040554]\n"
           " [-0.06529249  0.02144811  0.06565464  0.02129445]]\n<NDArray 2x4 @cpu(0)>\n"
           "init to all 1s: \n[[1. 1. 1. 1.]\n [1. 1. 1. 1.]]\n<NDArray 2x4 @cpu(0)>\n")
OUT_N48 = ("\n[[7.8478675 8.697754  7.2605453 7.4522943 9.851183 ]\n"
           " [6.137073  8.402723  6.2717824 5.426478  5.290146 ]\n"
           " [5.2820916 7.172083  7.4391885 6.5589795 9.405023 ]\n"
           " [8.481717  9.882022  6.888759  8.088289  5.8980184]]\n<NDArray 4x5 @cpu(0)>")
W_SHARED_N54 = ("\n[[ 0.02040984  0.01236439 -0.02454438  0.04634678]\n"
                " [ 0.00275957  0.01805746 -0.06999225  0.0521711 ]\n"
                " [-0.02633957 -0.03170411 -0.01043678  0.04172656]\n"
                " [ 0.05394727 -0.04401097  0.02518312  0.06339083]]\n<NDArray 4x4 @cpu(0)>")
OUT_N54 = ("\n[[ 0.02479142  0.00512109  0.01498631  0.05553398  0.03005757]\n"
           " [ 0.06864745 -0.0042704  -0.03963442 -0.00615795  0.02283095]\n"
           " [ 0.05689853 -0.03313487 -0.05078914 -0.06710886 -0.0379093 ]\n"
           " [ 0.03617301  0.05342196 -0.0251976   0.0566195  -0.01631505]]\n"
           f"<NDArray 4x5 @cpu(0)>\n{W_SHARED_N54}\n{W_SHARED_N54}\n"
           "\n[[-0.00614183  0.02624836 -0.00232279 -0.03982893]\n"
           " [ 0.04042352  0.06263188 -0.03787814  0.03231981]]\n<NDArray 2x4 @cpu(0)>\n")
OUT_N6_PERLAYER = ("\n[[0.16377717 0.16377717]\n [0.2605431  0.2605431 ]\n"
                   " [0.15782857 0.15782857]]\n<NDArray 3x2 @cpu(0)>")
OUT_X_N10 = ("\n[[0.5488135  0.5928446  0.71518934 0.84426576 0.60276335]\n"
             " [0.8579456  0.5448832  0.8472517  0.4236548  0.6235637 ]\n"
             " [0.6458941  0.3843817  0.4375872  0.2975346  0.891773  ]]\n<NDArray 3x5 @cpu(0)>")
THREES_2X4 = "\n[[3. 3. 3. 3.]\n [3. 3. 3. 3.]]\n<NDArray 2x4 @cpu(0)>"
OUT_N31 = "Sequential(\n  (0): Dense(5 -> 4, Activation(relu))\n  (1): Dense(4 -> 2, linear)\n)\n"
OUT_N66 = ("\n[[ 0.01498631  0.05553398  0.03005757  0.06864745 -0.0042704 ]\n"
           " [-0.03963442 -0.00615795  0.02283095  0.05689853 -0.03313487]\n"
           " [-0.05078914 -0.06710886 -0.0379093   0.03617301  0.05342196]\n"
           " [-0.0251976   0.0566195  -0.01631505  0.02040984  0.01236439]]\n<NDArray 4x5 @cpu(0)>")
W_N80 = ("\n[[8.522371  6.9802985 7.315751  7.8271065]\n [9.202143  5.916399  6.0243287 5.724239 ]\n"
         " [5.8247943 7.4402814 5.6241655 6.778064 ]\n [8.610403  9.70216   5.1522646 8.826626 ]]\n"
         "<NDArray 4x4 @cpu(0)>")
OUT_N80 = f"{W_N80}\n{W_N80}\n\n[[8.734971  8.743319  5.4629807 9.518599 ]]\n<NDArray 1x4 @cpu(0)>\n"
OUT_N87 = ("sequential15_ (\n"
           "  Parameter sequential15_dense0_weight (shape=(4, 4), dtype=<class 'numpy.float32'>)\n"
           "  Parameter sequential15_dense0_bias (shape=(4,), dtype=<class 'numpy.float32'>)\n"
           "  Parameter sequential15_dense2_weight (shape=(1, 4), dtype=<class 'numpy.float32'>)\n"
           "  Parameter sequential15_dense2_bias (shape=(1,), dtype=<class 'numpy.float32'>)\n)\n")
W_N88 = ("\n[[ 46.127563 -44.180466 -52.159836 -98.03035 ]\n"
         " [ 41.710976 -41.90676  -50.33182  -93.24747 ]\n"
         " [ 35.595413 -28.681591 -35.441845 -67.93771 ]\n"
         " [ 37.813026 -38.277912 -52.37093  -90.49579 ]]\n<NDArray 4x4 @cpu(0)>")
OUT_N88 = f"{W_N88}\n{W_N88}\n\n[[-63.586525 -54.407845 -53.361164 -63.996933]]\n<NDArray 1x4 @cpu(0)>\n"
G_N89 = ("\n[[-376.0519   511.6076   594.75586 1058.5746 ]\n"
         " [-325.08832  478.23157  563.5615   989.71704]\n"
         " [-297.70618  361.21872  410.6601   747.1577 ]\n"
         " [-292.02625  479.80072  575.23193  993.2242 ]]\n<NDArray 4x4 @cpu(0)>")
OUT_N89 = f"{G_N89}\n{G_N89}\n\n[[723.2149  631.51166 588.24146 735.15533]]\n<NDArray 1x4 @cpu(0)>\n"

REINIT_WARNING = ("Parameter {} is already initialized, ignoring. "
                  "Set force_reinit=True to re-initialize.")


def user_warnings(stderr: str) -> list[tuple[str, str]]:
    """(file, message) of every formatted UserWarning in ``stderr``."""
    return re.findall(r"^(.*?):\d+: UserWarning: (.*)$", stderr, flags=re.M)


def assert_reinit_warnings(stderr: str, names: list[str]) -> None:
    found = user_warnings(stderr)
    messages = [m for _, m in found]
    assert len(messages) == len(names), stderr
    for msg, name in zip(messages, names):
        assert msg in (REINIT_WARNING.format(name), REINIT_WARNING.format(f"'{name}'")), msg
    # Reported, as in Gluon (mxnet/gluon/parameter.py), from the engine's gluon/parameter.py.
    for filename, _ in found:
        assert filename.replace(os.sep, "/").endswith("app/engine/gluon/parameter.py"), filename


# ============================================================================ the seed cells
SEED_SCRIPT = PRELUDE + r'''
x = nd.random.uniform(shape=(3,5))
mark("n1")
print(repr(x))                                            # test: shown by the chapter at n=10

mark("n3")
import sys
try:
    net = get_net()
    net(x)
except RuntimeError as err:
    sys.stderr.write(str(err))
    print(type(err).__name__)                             # test
sys.stderr.write("\n")                                    # test

mark("n4")
net.initialize()
print(repr(net(x)))                                       # test: the cell's displayed result

mark("n5")
w = net[0].weight
b = net[0].bias
print('name: ', net[0].name, '\nweight: ', w, '\nbias: ', b)

mark("n6")
print('weight:', w.data())
print('weight gradient', w.grad())
print('bias:', b.data())
print('bias gradient', b.grad())

mark("n7")
params = net.collect_params() #返回的是class mxnet.gluon.ParameterDict
print(params)
print(params['sequential0_dense0_bias'].data())
print(params.get('dense0_weight').data())

mark("n8")
params = net.collect_params()  #返回的是class mxnet.gluon.ParameterDict
print(params)

old_w0 = net[0].weight.data()                              # test
mark("n15")
from app.engine import init
params.initialize(init=init.Normal(sigma=0.02), force_reinit=True)#Pclass mxnet.gluon.Parameter   (class mxnet.initializer.Initializer)init
print(net[0].weight.data(), net[0].bias.data())
dump("n15_w0", net[0].weight.data()); dump("n15_w1", net[1].weight.data())     # test
dump("n15_old_w0", old_w0)                                                       # test
dump("n15_b0", net[0].bias.data()); dump("n15_b1", net[1].bias.data())         # test

mark("n16_one")
params.initialize(init=init.One(), force_reinit=True)
print(net[0].weight.data(), net[0].bias.data())
dump("n16_w1", net[1].weight.data()); dump("n16_b1", net[1].bias.data())       # test

mark("n12")
net = get_net()
print(repr(net.collect_params()))
mark("n13")
net.initialize()
print(repr(net.collect_params()))
print(net)                                                                       # test
mark("n16")
net(x)
print(repr(net.collect_params()))
mark("n31")
print(net)
mark("end")
'''


@pytest.fixture(scope="module")
def seed_run():
    out, err = run_py(SEED_SCRIPT)
    return sections(out), sections(err)


def test_n1_n3_forward_before_initialize_raises_the_chapter_error(seed_run):
    out, err = seed_run
    assert out["n1"] == OUT_X_N10 + "\n"
    assert out["n3"] == "RuntimeError\n"
    assert err["n3"] in (UNINIT_CHAPTER + "\n", UNINIT_191 + "\n")


def test_n4_net_of_x_is_the_recorded_output(seed_run):
    out, err = seed_run
    assert out["n4"] == OUT_N4 + "\n"
    assert err["n4"] == ""


def test_n5_names_and_parameter_reprs(seed_run):
    assert seed_run[0]["n5"] == OUT_N5


def test_n6_weight_and_zero_gradients(seed_run):
    assert seed_run[0]["n6"] == OUT_N6


def test_n7_n8_collect_params_repr_bracket_access_and_get(seed_run):
    out, err = seed_run
    assert out["n7"] == OUT_N7
    assert out["n8"] == OUT_N8
    assert err["n7"] == err["n8"] == ""


def test_n15_force_reinit_with_normal_draws_sigma_002_without_warnings(seed_run):
    out, err = seed_run
    # The recorded stderr of n=15 is stale notebook output: force_reinit=True warns about nothing.
    assert user_warnings(err["n15"]) == []
    w = np.concatenate([np.ravel(json.loads(out["json_n15_w0"])),
                        np.ravel(json.loads(out["json_n15_w1"]))])
    assert w.size == 28
    # 28 draws of N(0, 0.02): sample mean and std within ~4 standard errors.
    assert abs(w.mean()) < 4 * 0.02 / np.sqrt(28)
    assert 0.02 * (1 - 4 / np.sqrt(2 * 28)) < w.std() < 0.02 * (1 + 4 / np.sqrt(2 * 28))
    old = np.array(json.loads(out["json_n15_old_w0"]))
    new = np.array(json.loads(out["json_n15_w0"]))
    assert not np.any(np.isclose(old, new, rtol=0, atol=1e-9))
    # The biases keep their own initializer ('zeros'), which beats the global one.
    assert json.loads(out["json_n15_b0"]) == [0.0] * 4
    assert json.loads(out["json_n15_b1"]) == [0.0] * 2


def test_n16_force_reinit_with_one_sets_weights_to_ones_and_bias_stays_zero(seed_run):
    out, err = seed_run
    assert out["n16_one"] == OUT_N16_ONE
    assert json.loads(out["json_n16_w1"]) == [[1.0] * 4] * 2
    assert json.loads(out["json_n16_b1"]) == [0.0, 0.0]
    assert user_warnings(err["n16_one"]) == []


def test_n12_n13_n16_deferred_shapes_filled_by_the_first_forward(seed_run):
    out, err = seed_run
    assert out["n12"] == params_repr(1, "(4, 0)", "(2, 0)") + "\n"
    n13 = out["n13"]
    assert n13.startswith(params_repr(1, "(4, 0)", "(2, 0)") + "\n")   # still (4, 0)
    # Before the first forward the layers do not know their input size yet.
    assert n13.endswith("Sequential(\n  (0): Dense(None -> 4, Activation(relu))\n"
                        "  (1): Dense(None -> 2, linear)\n)\n")
    assert out["n16"] == params_repr(1, "(4, 5)", "(2, 4)") + "\n"
    assert err["n12"] == err["n13"] == err["n16"] == ""


def test_n31_print_net(seed_run):
    assert seed_run[0]["n31"] == OUT_N31


def test_initialize_is_collect_params_initialize():
    """The chapter's illustrative cell: ``Block.initialize`` is
    ``self.collect_params().initialize(init, ctx, verbose)``."""
    from app.engine import init as initializer
    from app.engine import nd
    from app.engine.gluon import nn

    def initialize(self, init=initializer.Uniform(), ctx=None, verbose=False):  # noqa: B008
        self.collect_params().initialize(init, ctx, verbose)

    nets = []
    for how in ("method", "cell"):
        net = nn.Sequential()
        with net.name_scope():
            net.add(nn.Dense(3, in_units=2), nn.Dense(1))
        if how == "method":
            net.initialize(initializer.Constant(0.5))
        else:
            initialize(net, initializer.Constant(0.5))
        net(nd.ones((1, 2)))
        nets.append(net)
    for a, b in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())
    np.testing.assert_array_equal(nets[0][0].weight.data().asnumpy(), np.full((3, 2), 0.5))
    np.testing.assert_array_equal(nets[0][0].bias.data().asnumpy(), np.zeros(3))


# ============================================================================ n=15 at its offset
def test_n15_normal_numbers_at_raw_offset_177():
    """n=15's recorded Normal(0.02) weights are the window at raw offset 177 of the stream.

    One element (row 0, col 3) prints ...79 in the chapter and ...78 here: the 2017-era glibc
    ``logf`` of the recording machine returned 1 ulp less for that r² than today's correctly
    rounded ``logf`` does; hence ±1 in the last printed digit instead of an exact text."""
    out, err = run_py(PRELUDE + r'''
at(177)
net = get_net()
net.initialize(init.One())
net(nd.ones((1, 5)))
params = net.collect_params()
params.initialize(init=init.Normal(sigma=0.02), force_reinit=True)
mark("n15")
print(net[0].weight.data(), net[0].bias.data())
''')
    got = numbers(sections(out)["n15"])
    want = numbers(OUT_N15)
    np.testing.assert_allclose(got, want, rtol=0, atol=1.01e-8)   # ±1 in the 8th decimal
    assert user_warnings(err) == []


# ============================================================================ sharing n=49/54
def test_n49_n54_shared_layer_weights_at_offset_415():
    out, _ = run_py(PRELUDE + r'''
x = nd.random.uniform(shape=(3,5))
at(415 - 15)
net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(4, activation="relu"))
    net.add(nn.Dense(4, activation="relu"))
    net.add(nn.Dense(4, activation="relu", params=net[-1].params))#当前net[-1]是上一层
    net.add(nn.Dense(2))
mark("n54")
net.initialize() #默认weight初始化是均匀分布继承了block的initialize？？
net(x)
print(net[0].weight.data())
print(net[1].weight.data())
print(net[2].weight.data())
print(net[3].weight.data())
mark("checks")
print(net[1].weight is net[2].weight, net[1].bias is net[2].bias)
print(json.dumps(list(net.collect_params().keys())))
print(net[2].params.prefix == net[1].params.prefix)
''')
    secs = sections(out)
    assert secs["n54"] == OUT_N54
    lines = secs["checks"].splitlines()
    assert lines[0] == "True True"
    assert json.loads(lines[1]) == [
        "sequential0_dense0_weight", "sequential0_dense0_bias",
        "sequential0_dense1_weight", "sequential0_dense1_bias",
        "sequential0_dense3_weight", "sequential0_dense3_bias"]   # dense2 is absent
    assert lines[2] == "True"


# ============================================================================ MyInit n=77/47/48
def test_n77_n47_n48_n45_my_init_weights_at_offset_387_bias_stays_zero():
    out, err = run_py(PRELUDE + r'''
x = nd.random.uniform(shape=(3,5))
at(387 - 15)
mark("n47")
net = get_net()
net.initialize(MyInit())
net(x)
print(repr(net[0].bias.data()))
mark("n48")
print(repr(net[0].weight.data()))
mark("n45")
print(repr(net[0].bias.data()))
mark("checks")
dump("w0", net[0].weight.data()); dump("w1", net[1].weight.data()); dump("b1", net[1].bias.data())
''')
    secs = sections(out)
    assert secs["n47"] == ZEROS_4 + "\n"
    assert secs["n48"] == OUT_N48 + "\n"
    assert secs["n45"] == ZEROS_4 + "\n"
    for key in ("json_w0", "json_w1"):
        w = np.array(json.loads(secs[key]))
        assert ((w >= 5) & (w < 10)).all()
    assert json.loads(secs["json_b1"]) == [0.0, 0.0]   # _init_bias is never called by Gluon
    # MyInit sets _verbose=True but has no print function: nothing is logged or printed.
    assert "".join(sections(err).values()) == ""


# ============================================================================ set_data n=17
def test_n17_default_weight_at_offset_269_then_set_data_ones():
    out, err = run_py(PRELUDE + r'''
x = nd.random.uniform(shape=(3,5))
at(269 - 15 - 20)          # test: dense0's 4x5 weight comes first, then dense1's at 269
mark("n17")
net = get_net()
net.initialize()
net(x)

print('default weight:', net[1].weight.data())

w = net[1].weight
w.set_data(nd.ones(w.shape))

print('init to all 1s:', net[1].weight.data())
''')
    assert sections(out)["n17"] == OUT_N17


# ============================================================================ exercises n=2..75
PERLAYER_SCRIPT = PRELUDE + r'''
x = nd.random.uniform(shape=(3,5))
mark("n2")
net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(4, activation="relu"))
    net.add(nn.Dense(2))

mark("n6")
from app.engine import init
net[0].params.initialize(init=init.Uniform())
net[1].params.initialize(init=init.Constant(3))
print(repr(net(x)))
dump("w0", net[0].weight.data()); dump("x", x)          # test

mark("n10")
print(repr(x))
mark("n9")
print(net.collect_params())
mark("n7")
print(repr(net[1].weight.data()))
mark("n8")
net[0].initialize(init=init.Uniform(), verbose=True)
net[1].initialize(init=init.Constant(3))
print(repr(net(x)))
mark("n31")
print(net)
mark("n75")
p = net[0].params                                          # test
print(type(p).__module__ + "." + type(p).__qualname__)     # test
print(repr(p) == repr(net[0].collect_params()), list(p.values()) == list(net[0].collect_params().values()))

at(417 - 35)               # test: re-run n=2 and n=6 with the stream at raw offset 417
net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(4, activation="relu"))
    net.add(nn.Dense(2))
net[0].params.initialize(init=init.Uniform())
net[1].params.initialize(init=init.Constant(3))
net(x)
mark("n66")
print(repr(net[0].weight.data()))
mark("n67")
print(repr(net[1].weight.data()))
mark("end")
'''


@pytest.fixture(scope="module")
def perlayer_run():
    out, err = run_py(PERLAYER_SCRIPT)
    return sections(out), sections(err)


def test_n6_per_layer_initializers_give_equal_columns(perlayer_run):
    out, err = perlayer_run
    got = numbers(out["n6"])
    # net[1].weight is all 3 and its bias 0, so both output columns are 3·Σ relu(h).
    assert got.reshape(3, 2)[:, 0].tolist() == got.reshape(3, 2)[:, 1].tolist()
    w0 = np.array(json.loads(out["json_w0"]), np.float32)
    xx = np.array(json.loads(out["json_x"]), np.float32)
    ref = 3 * np.maximum(xx.astype(np.float64) @ w0.T.astype(np.float64), 0).sum(axis=1)
    np.testing.assert_allclose(got.reshape(3, 2)[:, 0], ref, rtol=1e-6)
    # The recorded numbers are this run's (weights at offset 15), up to float32 summation order.
    np.testing.assert_allclose(got, numbers(OUT_N6_PERLAYER), rtol=1e-6)
    assert ((w0 >= -0.07) & (w0 < 0.07)).all()
    assert err["n6"] == ""


def test_n10_x_is_the_first_window_of_the_stream(perlayer_run):
    assert perlayer_run[0]["n10"] == OUT_X_N10 + "\n"


def test_n9_n7_collect_params_and_constant_3(perlayer_run):
    out, _ = perlayer_run
    assert out["n9"] == OUT_N8
    assert out["n7"] == THREES_2X4 + "\n"


def test_n8_reinitializing_warns_once_per_parameter_in_order_and_changes_nothing(perlayer_run):
    out, err = perlayer_run
    assert_reinit_warnings(err["n8"], ["sequential0_dense0_weight", "sequential0_dense0_bias",
                                       "sequential0_dense1_weight", "sequential0_dense1_bias"])
    # Nothing was re-initialized: the same output as n=6 (verbose=True logs nothing either).
    assert numbers(out["n8"]).tolist() == numbers(out["n6"]).tolist()
    assert "Initialized" not in err["n8"]


def test_n31_print_net_after_per_layer_init(perlayer_run):
    assert perlayer_run[0]["n31"] == OUT_N31


def test_n75_layer_params_is_a_parameter_dict(perlayer_run):
    lines = perlayer_run[0]["n75"].splitlines()
    # The chapter shows mxnet.gluon.parameter.ParameterDict; ported, the same class path.
    assert lines[0] == "app.engine.gluon.parameter.ParameterDict"
    assert lines[1] == "True True"


def test_n66_n67_weights_at_offset_417_and_constant_3(perlayer_run):
    out, err = perlayer_run
    assert out["n66"] == OUT_N66 + "\n"
    assert out["n67"] == THREES_2X4 + "\n"
    assert err["n66"] == err["n67"] == ""


def test_exercise_collect_params_returns_a_parameter_dict():
    """The cell ``net.colleact_params()  返回ParameterDict`` is prose (a typo and a comment); what
    it says: ``collect_params()`` returns a ParameterDict, and ``net.params`` is one too."""
    from app.engine.gluon import ParameterDict, nn
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    assert isinstance(net.collect_params(), ParameterDict)
    assert isinstance(net.params, ParameterDict)
    assert list(net.params.keys()) == []
    with pytest.raises(AttributeError):
        net.colleact_params()  # noqa: B018 - the chapter's typo is not an API


# ============================================================================ shared layer + Trainer
TRAIN_SCRIPT = PRELUDE + r'''
for _ in range(15):        # test: the chapter's net was the 16th Sequential of its session
    nn.Sequential()
at(489)
mark("n80")
net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(4, in_units=4, activation="relu"))
    net.add(nn.Dense(4, in_units=4, activation="relu", params=net[-1].params))
    net.add(nn.Dense(1, in_units=4))

net.initialize(MyInit())
print(net[0].weight.data())
print(net[1].weight.data())
print(net[2].weight.data())
mark("before")
for k, v in net.collect_params().items():                  # test
    dump("before_" + k, v.data())

mark("n86")
from app.engine import gluon
from app.engine import autograd
trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
a = nd.random_normal(shape=(4, 4))
with autograd.record():
    y = net(a)
y.backward()
dump("a", a)                                               # test
for k, v in net.collect_params().items():                  # test: gradients before the step
    dump("grad_" + k, v.grad())
trainer.step(1)
mark("n87")
print(net.collect_params())
mark("n88")
print(net[0].weight.data())
print(net[1].weight.data())
print(net[2].weight.data())
mark("n89")
print(net[0].weight.grad())
print(net[1].weight.grad())
print(net[2].weight.grad())
mark("after")
for k, v in net.collect_params().items():                  # test
    dump("after_" + k, v.data())
print("@@same_grad_object")
print(net[0].weight.grad() is net[1].weight.grad(), net[0].weight is net[1].weight)
'''


@pytest.fixture(scope="module")
def train_run():
    out, err = run_py(TRAIN_SCRIPT)
    return sections(out), sections(err)


def _arrays(out: dict[str, str], prefix: str) -> dict[str, np.ndarray]:
    """The arrays dumped as ``@@json_<prefix><name>``, by name."""
    head = "json_" + prefix
    return {k[len(head):]: np.array(json.loads(v), np.float32)
            for k, v in out.items() if k.startswith(head)}


def test_n80_my_init_with_in_units_at_offset_489(train_run):
    out, err = train_run
    assert out["n80"] == OUT_N80
    assert "".join(err.values()) == ""


def test_n87_the_shared_layer_is_listed_once_under_its_owner(train_run):
    assert train_run[0]["n87"] == OUT_N87


def test_n86_n88_n89_shared_gradient_is_the_sum_of_both_uses_and_one_update(train_run):
    out, _ = train_run
    before = _arrays(out, "before_")
    step = _arrays(out, "")
    after = _arrays(out, "after_")
    p = "sequential15_"
    W, b = before[p + "dense0_weight"], before[p + "dense0_bias"]
    w2 = before[p + "dense2_weight"]
    a = step["a"]

    # Hand-written NumPy backprop (float64) of y = d2(relu(d(relu(d(a))))), head gradient ones.
    W64, b64, w264, a64 = (t.astype(np.float64) for t in (W, b, w2, a))
    z1 = a64 @ W64.T + b64
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W64.T + b64
    h2 = np.maximum(z2, 0)
    g_y = np.ones((4, 1))
    g_w2 = g_y.T @ h2
    g_b2 = g_y.sum(axis=0)
    g_z2 = (g_y @ w264) * (z2 > 0)
    g_W_use2, g_b_use2 = g_z2.T @ h1, g_z2.sum(axis=0)
    g_z1 = (g_z2 @ W64) * (z1 > 0)
    g_W_use1, g_b_use1 = g_z1.T @ a64, g_z1.sum(axis=0)

    gW = step["grad_" + p + "dense0_weight"]
    gb = step["grad_" + p + "dense0_bias"]
    np.testing.assert_allclose(gW, g_W_use1 + g_W_use2, rtol=1e-5)
    np.testing.assert_allclose(gb, g_b_use1 + g_b_use2, rtol=1e-5, atol=1e-3)
    for alone in (g_W_use1, g_W_use2):
        assert not np.allclose(gW, alone, rtol=1e-3)
    np.testing.assert_allclose(step["grad_" + p + "dense2_weight"], g_w2, rtol=1e-5)
    np.testing.assert_allclose(step["grad_" + p + "dense2_bias"], g_b2, rtol=1e-5)

    # One SGD step (lr 0.1, batch 1): w - 0.1·grad, the shared weight updated once.
    for name in ("dense0_weight", "dense0_bias", "dense2_weight", "dense2_bias"):
        w_old, g = before[p + name], step["grad_" + p + name]
        np.testing.assert_allclose(after[p + name], w_old - np.float32(0.1) * g, rtol=1e-6,
                                   atol=1e-6)
    lines = out["same_grad_object"].split()
    assert lines == ["True", "True"]


def test_n88_n89_recorded_weights_and_grads_up_to_summation_order(train_run):
    """The printed n=88/n=89 numbers agree with MXNet's to float32 summation order."""
    out, _ = train_run
    np.testing.assert_allclose(numbers(out["n88"]), numbers(OUT_N88), rtol=1e-5)
    np.testing.assert_allclose(numbers(out["n89"]), numbers(OUT_N89), rtol=1e-5)
    # Both prints of the shared weight (net[0] and net[1]) show the same numbers.
    w_rows = numbers(out["n88"])
    assert w_rows[:16].tolist() == w_rows[16:32].tolist()
    g_rows = numbers(out["n89"])
    assert g_rows[:16].tolist() == g_rows[16:32].tolist()


def test_fully_connected_is_within_a_few_ulps_of_mxnets_sequential_sums():
    """The chapter's MXNet summed each dot product sequentially in float32 (multiply, round,
    add, round; no FMA), which reproduces n=6's 0.2605431 and n=88/89 bit for bit. ParamLab's
    FullyConnected uses BLAS (pairwise/blocked sums, much faster on real layer sizes), so those
    last digits may differ; this pins how far: a few float32 ulps, on the chapter's own shapes."""
    from app.engine import nd
    from app.engine import random as rng
    rng.seed(0)
    for n, k, m in ((3, 5, 4), (3, 4, 2), (4, 4, 4), (4, 4, 1), (256, 64, 32)):
        x = rng.normal(0.0, 3.0, shape=(n, k))
        w = rng.uniform(5.0, 10.0, shape=(m, k))
        ours = nd.FullyConnected(nd.array(x), nd.array(w), no_bias=True).asnumpy()
        seq = np.zeros((n, m), np.float32)
        for j in range(k):                       # MXNet's order: one rounded product at a time
            seq = (seq + (x[:, j:j + 1] * w[:, j][None, :]).astype(np.float32)).astype(np.float32)
        # Both are sums of the same rounded products; their difference is bounded by the
        # standard summation error bound, 2·k·eps·Σ|x·w| (cancellation makes ulps of the result
        # meaningless). A wrong operand, order of axes or dtype breaks it by orders of magnitude.
        eps = np.finfo(np.float32).eps
        bound = 2 * k * eps * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64).T)
        assert (np.abs(ours.astype(np.float64) - seq) <= bound).all()
        assert ours.dtype == np.float32
