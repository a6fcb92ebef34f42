import h5wasm from 'h5wasm/node';
await h5wasm.ready;
const f = new h5wasm.File(process.argv[2], 'r');
const walk = (g, prefix, depth) => { if (depth > 6) return; for (const k of g.keys()) { const c = g.get(k); const p = prefix + '/' + k; if (c instanceof h5wasm.Group) { console.log(p, '(group)', Object.keys(c.attrs).join(',')); walk(c, p, depth + 1); } else console.log(p, JSON.stringify(c.shape), c.dtype); } };
walk(f, '', 0);
