// A symbolic pickle machine: runs a pickle's opcodes (protocols 0-5, no out-of-band buffers) where a global is
// just its dotted name and a call just records what was called with what. Nothing is imported, constructed or
// executed; raw byte strings are recorded as where they lie in the pickle. Caps on created objects and on the
// input keep a hostile pickle to bounded work (spec/ARCHIVES.md §2, §4). Its readers: pickle-tensors.ts (torch's
// data.pkl) and numpy-pickle.ts (pickled NumPy state).
import { PickleReader } from './pickle-reader.js';
import { PickleNotUnderstood, type Value } from './pickle-values.js';

const MARK: Value = { k: 'mark' };
/** Values the machine may create (a pickle of 64 MiB of EMPTY_DICT would otherwise build 67M objects). */
const MAX_VALUES = 4_000_000;

export class Machine {
  private readonly input: PickleReader;
  private readonly stack: Value[] = [];
  private readonly memo = new Map<number, Value>();
  private nextMemo = 0;

  constructor(b: Uint8Array) {
    this.input = new PickleReader(b);
  }

  private created = 0;

  private push(v: Value): void {
    if (typeof v === 'object' && v !== null && ++this.created > MAX_VALUES)
      throw new PickleNotUnderstood(`the pickle builds more than ${MAX_VALUES} objects`);
    this.stack.push(v);
  }

  private pop(): Value {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) throw new PickleNotUnderstood('the pickle pops an empty stack');
    return v;
  }

  private top(): Value {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleNotUnderstood('the pickle reads an empty stack');
    return v;
  }

  private popMark(): Value[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleNotUnderstood('the pickle pops to a mark that is not there');
    const items = this.stack.splice(i);
    items.shift();
    return items;
  }

  private memoGet(i: number): Value {
    const v = this.memo.get(i);
    if (v === undefined) throw new PickleNotUnderstood(`the pickle reads memo ${i} before writing it`);
    return v;
  }

  private memoPut(i: number): void {
    this.memo.set(i, this.top());
  }

  private setItems(target: Value, kvs: Value[]): void {
    if (kvs.length % 2) throw new PickleNotUnderstood('SETITEMS with an odd number of items');
    const entries =
      typeof target === 'object' && target !== null && (target.k === 'dict' || target.k === 'call')
        ? target.entries
        : undefined;
    if (!entries) throw new PickleNotUnderstood('SETITEM on something that is not a mapping');
    for (let i = 0; i < kvs.length; i += 2) entries.push([kvs[i]!, kvs[i + 1]!]);
  }

  private append(target: Value, items: Value[]): void {
    // One push per item: spreading a 300,000-item APPENDS into push() overflows the call stack.
    if (typeof target === 'object' && target !== null && target.k === 'list')
      for (const x of items) target.items.push(x);
    else if (!(typeof target === 'object' && target !== null && target.k === 'call'))
      throw new PickleNotUnderstood('APPEND on something that is not a list');
  }

  run(): Value {
    for (;;) {
      const op = this.input.byte();
      switch (op) {
        case 0x80:
          this.input.byte();
          break; // PROTO
        case 0x95:
          this.input.uint(8);
          break; // FRAME: framing only, the opcodes continue inline
        case 0x2e:
          return this.pop(); // STOP
        case 0x28:
          this.push(MARK);
          break; // MARK
        case 0x30:
          this.pop();
          break; // POP
        case 0x31:
          this.popMark();
          break; // POP_MARK
        case 0x32:
          this.push(this.top());
          break; // DUP
        case 0x4e:
          this.push(null);
          break; // NONE
        case 0x88:
          this.push(true);
          break; // NEWTRUE
        case 0x89:
          this.push(false);
          break; // NEWFALSE
        case 0x4a:
          this.push(this.input.int32());
          break; // BININT
        case 0x4b:
          this.push(this.input.uint(1));
          break; // BININT1
        case 0x4d:
          this.push(this.input.uint(2));
          break; // BININT2
        case 0x8a:
          this.push(this.input.long(this.input.byte()));
          break; // LONG1
        case 0x8b: {
          // LONG4
          const n = this.input.int32();
          if (n < 0 || n > 64) throw new PickleNotUnderstood('a LONG4 larger than 64 bytes');
          this.push(this.input.long(n));
          break;
        }
        case 0x49:
        case 0x4c: {
          // INT, LONG (text)
          const s = this.input.line().replace(/L$/, '');
          this.push(s === '01' ? true : s === '00' ? false : Number(s));
          break;
        }
        case 0x47: {
          // BINFLOAT (big-endian double)
          // A float is never a shape, offset or key: only its kind matters, not its value.
          this.input.bytes(8);
          this.push({ k: 'float' });
          break;
        }
        case 0x46:
          this.input.line();
          this.push({ k: 'float' });
          break; // FLOAT
        case 0x8c:
          this.push(this.input.text(this.input.uint(1)));
          break; // SHORT_BINUNICODE
        case 0x58:
          this.push(this.input.text(this.input.uint(4)));
          break; // BINUNICODE
        case 0x8d:
          this.push(this.input.text(this.input.uint(8)));
          break; // BINUNICODE8
        case 0x55:
          this.push(this.input.latin1(this.input.uint(1)));
          break; // SHORT_BINSTRING
        case 0x54:
          this.push(this.input.latin1(this.input.uint(4)));
          break; // BINSTRING
        case 0x53:
          this.push(this.input.line().replace(/^(['"])(.*)\1$/s, '$2'));
          break; // STRING (quoted repr)
        case 0x56:
          this.push(this.input.line());
          break; // UNICODE (raw-unicode-escape; names only)
        case 0x43:
          this.push(this.input.rawBytes(this.input.uint(1)));
          break; // SHORT_BINBYTES
        case 0x42:
          this.push(this.input.rawBytes(this.input.uint(4)));
          break; // BINBYTES
        case 0x8e:
        case 0x96:
          this.push(this.input.rawBytes(this.input.uint(8)));
          break; // BINBYTES8, BYTEARRAY8
        case 0x7d:
          this.push({ k: 'dict', entries: [] });
          break; // EMPTY_DICT
        case 0x5d:
          this.push({ k: 'list', items: [] });
          break; // EMPTY_LIST
        case 0x29:
          this.push({ k: 'tuple', items: [] });
          break; // EMPTY_TUPLE
        case 0x8f:
          this.push({ k: 'list', items: [] });
          break; // EMPTY_SET: items are never names
        case 0x85:
          this.push({ k: 'tuple', items: [this.pop()] });
          break; // TUPLE1
        case 0x86: {
          const b = this.pop();
          const a = this.pop();
          this.push({ k: 'tuple', items: [a, b] });
          break;
        } // TUPLE2
        case 0x87: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push({ k: 'tuple', items: [a, b, c] });
          break;
        } // TUPLE3
        case 0x74:
          this.push({ k: 'tuple', items: this.popMark() });
          break; // TUPLE
        case 0x6c:
          this.push({ k: 'list', items: this.popMark() });
          break; // LIST
        case 0x91:
          this.push({ k: 'tuple', items: this.popMark() });
          break; // FROZENSET
        case 0x64: {
          // DICT
          const kv = this.popMark();
          const d: Value = { k: 'dict', entries: [] };
          this.setItems(d, kv);
          this.push(d);
          break;
        }
        case 0x61: {
          const v = this.pop();
          this.append(this.top(), [v]);
          break;
        } // APPEND
        case 0x65: {
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        } // APPENDS
        case 0x90:
          this.popMark();
          break; // ADDITEMS (sets: never names)
        case 0x73: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        } // SETITEM
        case 0x75: {
          const kv = this.popMark();
          this.setItems(this.top(), kv);
          break;
        } // SETITEMS
        case 0x63: {
          const mod = this.input.line();
          const name = this.input.line();
          this.push({ k: 'global', name: `${mod}.${name}` });
          break;
        } // GLOBAL
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const mod = this.pop();
          if (typeof name !== 'string' || typeof mod !== 'string')
            throw new PickleNotUnderstood('STACK_GLOBAL of something that is not two strings');
          this.push({ k: 'global', name: `${mod}.${name}` });
          break;
        }
        case 0x52: {
          const args = this.pop();
          const fn = this.pop();
          this.push({ k: 'call', fn, args, entries: [] });
          break;
        } // REDUCE
        case 0x81: {
          const args = this.pop();
          const fn = this.pop();
          this.push({ k: 'call', fn, args, entries: [] });
          break;
        } // NEWOBJ
        case 0x92: {
          this.pop();
          const args = this.pop();
          const fn = this.pop();
          this.push({ k: 'call', fn, args, entries: [] });
          break;
        } // NEWOBJ_EX
        case 0x62: {
          // BUILD: the state of the object below; names inside it still count
          const state = this.pop();
          const target = this.top();
          if (typeof target === 'object' && target !== null && target.k === 'call') target.state = state;
          break;
        }
        case 0x51:
          this.push({ k: 'pid', value: this.pop() });
          break; // BINPERSID
        case 0x50:
          this.push({ k: 'pid', value: this.input.line() });
          break; // PERSID
        case 0x71:
          this.memoPut(this.input.uint(1));
          break; // BINPUT
        case 0x72:
          this.memoPut(this.input.uint(4));
          break; // LONG_BINPUT
        case 0x70:
          this.memoPut(Number(this.input.line()));
          break; // PUT
        case 0x94:
          this.memoPut(this.nextMemo++);
          break; // MEMOIZE
        case 0x68:
          this.push(this.memoGet(this.input.uint(1)));
          break; // BINGET
        case 0x6a:
          this.push(this.memoGet(this.input.uint(4)));
          break; // LONG_BINGET
        case 0x67:
          this.push(this.memoGet(Number(this.input.line())));
          break; // GET
        default:
          throw new PickleNotUnderstood(
            `opcode 0x${op.toString(16)} at byte ${this.input.pos - 1} is not one ckvc reads`,
          );
      }
    }
  }
}
