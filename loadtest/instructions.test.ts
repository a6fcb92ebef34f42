import { describe, expect, it } from 'vitest';
import { compiledName, instructionsByFunction, nativeName } from './instructions.ts';

describe('compiledName', () => {
  it.each([
    ["JS:*'accept file:///tmp/anomaly-serve-bundle-x/build/server.mjs:70052:13", 'accept (server.mjs)'],
    ['JS:*fetch file:///tmp/b/server.mjs:69253:15', 'fetch (server.mjs)'],
    ["JS:+'predict file:///tmp/b/server.mjs:70407:16", 'predict (server.mjs)'],
    ["JS:*'Readable.on node:internal/streams/readable:1143:33", 'Readable.on (node:internal/streams/readable)'],
    ["JS:*' file:///tmp/b/server.mjs:68557:7", '(anonymous) (server.mjs:68557)'],
    ['JS:wasm-function[398]-398-turbofan', 'wasm-function[398]'],
    ["RegExp.> src: '^[a-z]+$' flags: ''", "RegExp.> src: '^[a-z]+$' flags: ''"],
  ])('%s → %s', (name, readable) => expect(compiledName(name)).toBe(readable));
});

describe('nativeName', () => {
  it.each([
    [
      'heap::base::SlotCallbackResult v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>(v8::internal::FullHeapObjectSlot, v8::internal::Tagged<v8::internal::HeapObject>)',
      'v8::internal::Scavenger::ScavengeObject',
    ],
    ['v8::internal::(anonymous namespace)::IterateObjectCache(v8::internal::Isolate*, std::vector<v8::internal::Tagged<v8::internal::Object>, std::allocator<v8::internal::Tagged<v8::internal::Object> > >*)', 'v8::internal::{anonymous}::IterateObjectCache'],
    ['double v8::internal::InternalStringToDouble<unsigned char>(unsigned char const*, unsigned char const*, v8::internal::ConversionFlag, double)', 'v8::internal::InternalStringToDouble'],
    ['operator new(unsigned long)', 'operator new'],
    ['Builtins_KeyedLoadIC_Megamorphic', 'Builtins_KeyedLoadIC_Megamorphic'],
  ])('%s → %s', (name, short) => expect(nativeName(name)).toBe(short));
});

describe('instructionsByFunction', () => {
  // Callgrind's format (valgrind's docs, "Callgrind Format Specification"): compressed names, a
  // call's inclusive cost on the line after calls=, relative positions, a recursion suffix.
  const dump = [
    'version: 1',
    'creator: callgrind-3.19.0',
    'positions: line',
    'events: Ir',
    'summary: 1000',
    '',
    'ob=(1) /usr/bin/node',
    'fl=(1) ???',
    'fn=(1) void v8::internal::Heap::Scavenge<int>(int)',
    '0 100',
    'cfn=(2) 0x0000000000001010',
    'calls=2 0',
    '0 400',
    '+3 20',
    'fn=(2)',
    '5 300',
    '+2 50',
    "fn=(3) 0x0000000000002008'2",
    '* 25',
    'fn=(4) 0x0000000000009000',
    '-1 5',
    'fn=(1)',
    '0 30',
    '',
    'totals: 530',
  ].join('\n');
  const map = ["1000 100 JS:*'accept file:///tmp/x/build/server.mjs:12:3", '2000 20 JS:wasm-function[7]-7-turbofan', ''].join('\n');

  it("sums each function's own instructions, names compiled code from V8's perf map, and leaves out what its calls cost", () => {
    expect(instructionsByFunction(dump, map)).toEqual(
      new Map([
        ['v8::internal::Heap::Scavenge', 150],
        ['accept (server.mjs)', 350],
        ['wasm-function[7]', 25],
        ['unnamed code', 5],
      ]),
    );
  });

  it('reads the events after as many positions as the dump declares', () => {
    const withInstructions = dump.replace('positions: line', 'positions: instr line').replace(/^([\d+*-]\S*) /gm, '$1 0x1 ');
    expect(instructionsByFunction(withInstructions, map).get('accept (server.mjs)')).toBe(350);
  });
});
