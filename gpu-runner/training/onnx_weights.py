# Reads trained weights back out of an exported model (the ONNX files export.py wrote), so a shipped model can be
# trained further (train.py --init-from) without its PyTorch checkpoints. torch.onnx.export renames and reshapes
# what it folds (a Linear's weight becomes a transposed "onnx::MatMul_N", a GroupNorm's scale a [C, 1, 1] tensor),
# so names alone do not say which parameter an initializer holds. Instead the same module, its parameters set to
# distinct random values, is exported once more: each of that export's initializers equals exactly one parameter,
# as is or transposed, and its name is the one the shipped file uses (same code, same trace).
import io
import struct

import numpy as np
import torch

# TensorProto.DataType values used here.
_DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 11: np.float64}


def _varint(buf, pos):
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of one protobuf message: varints as ints, length-delimited as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _tensor(buf):
    dims, dtype, name, raw, floats = [], 1, "", None, []
    for field, wire, value in _fields(buf):
        if field == 1:  # dims: packed or one varint each
            if wire == 2:
                p = 0
                while p < len(value):
                    d, p = _varint(value, p)
                    dims.append(d)
            else:
                dims.append(value)
        elif field == 2:
            dtype = value
        elif field == 8:
            name = bytes(value).decode()
        elif field == 9:
            raw = bytes(value)
        elif field == 4:  # float_data, when not raw
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value) if wire == 2 else [struct.unpack("<f", value)[0]])
    if dtype not in _DTYPES:
        raise ValueError(f"initializer {name}: unsupported data type {dtype}")
    array = np.frombuffer(raw, dtype=_DTYPES[dtype]) if raw is not None else np.array(floats, dtype=_DTYPES[dtype])
    return name, array.reshape(dims).copy()


def read_initializers(path_or_bytes):
    """name -> numpy array of every initializer in an ONNX model's main graph."""
    buf = memoryview(open(path_or_bytes, "rb").read() if isinstance(path_or_bytes, str) else path_or_bytes)
    out = {}
    for field, _, graph in _fields(buf):
        if field != 7:  # ModelProto.graph
            continue
        for gfield, _, value in _fields(graph):
            if gfield == 5:  # GraphProto.initializer
                name, array = _tensor(value)
                out[name] = array
    return out


def _export_bytes(module, args, kwargs):
    f = io.BytesIO()
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, f, **kwargs)
    return f.getvalue()


def load_from_onnx(module, onnx_path, args, export_kwargs):
    """Sets `module`'s parameters to the weights in `onnx_path`, which export.py wrote from a module of the same
    class and config with the same `args` and `export_kwargs`. Raises if any parameter is not found exactly once."""
    params = dict(module.named_parameters())
    g = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        for p in params.values():
            p.copy_(torch.randn(p.shape, generator=g))
    probe = read_initializers(_export_bytes(module, args, export_kwargs))
    shipped = read_initializers(onnx_path)
    found = {}
    for init_name, value in probe.items():
        for pname, p in params.items():
            ref = p.detach().numpy()
            if value.size != ref.size:
                continue
            if np.array_equal(value.reshape(-1), ref.reshape(-1)):
                found.setdefault(pname, (init_name, False))
            elif ref.ndim == 2 and value.ndim == 2 and np.array_equal(value, ref.T):
                found.setdefault(pname, (init_name, True))
    missing = sorted(set(params) - set(found))
    if missing:
        raise ValueError(f"{onnx_path}: no initializer holds {', '.join(missing)}")
    with torch.no_grad():
        for pname, (init_name, transposed) in found.items():
            if init_name not in shipped:
                raise ValueError(f"{onnx_path}: has no initializer {init_name} (for {pname}); not this model's export")
            value = shipped[init_name]
            value = value.T if transposed else value
            p = params[pname]
            if value.size != p.numel():
                raise ValueError(f"{onnx_path}: {init_name} has {value.size} values, {pname} needs {p.numel()}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(value)).reshape(p.shape))
    return module
