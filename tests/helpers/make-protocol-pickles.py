# Writes the protocol 1-5 pickles embedded in tests/unit/archive-formats.test.ts (PROTOCOL_PICKLES): the real
# CPython pickler run on a torch-like object graph (fake `torch` modules, persistent IDs as torch.save makes
# them), so the symbolic reader is checked on opcodes torch's default protocol 2 never uses (FRAME, MEMOIZE,
# SHORT_BINUNICODE, STACK_GLOBAL, ...). Run: python3 tests/helpers/make-protocol-pickles.py
import sys, types, pickle, io, collections, base64
torch = types.ModuleType('torch'); utils = types.ModuleType('torch._utils')
sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils; torch._utils = utils
class FloatStorage: pass
class LongStorage: pass
FloatStorage.__module__ = 'torch'; LongStorage.__module__ = 'torch'
torch.FloatStorage = FloatStorage; torch.LongStorage = LongStorage
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = 'torch._utils'
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class Storage:
    def __init__(s, cls, key, numel): s.cls, s.key, s.numel = cls, key, numel
class Tensor:
    def __init__(s, st, off, size, stride): s.a = (st, off, size, stride, False, collections.OrderedDict())
    def __reduce_ex__(s, proto): return (_rebuild_tensor_v2, s.a)
class P(pickle.Pickler):
    def persistent_id(self, o):
        if isinstance(o, Storage): return ('storage', o.cls, o.key, 'cpu', o.numel)
        return None
w = Storage(FloatStorage, '0', 12); st = Storage(LongStorage, '1', 1)
sd = collections.OrderedDict([('enc.weight', Tensor(w, 0, (3, 4), (4, 1))), ('enc.first_row', Tensor(w, 0, (4,), (1,))), ('count', Tensor(st, 0, (), ()))])
root = {'model': sd, 'opt': {'state': {0: {'m': Tensor(w, 4, (2, 4), (4, 1))}}, 'groups': [{'lr': 0.1, 'params': [0]}]}, 'epoch': 3}
for proto in (1, 2, 3, 4, 5):
    b = io.BytesIO(); P(b, protocol=proto).dump(root)
    print(proto, base64.b64encode(b.getvalue()).decode())
