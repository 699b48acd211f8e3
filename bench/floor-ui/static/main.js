// Loads the wasm bundle written by wasm-bindgen (--target web). Kept out of index.html so
// the content security policy needs no inline scripts. The wasm is fetched while the glue
// code loads, and compiled as it streams in.
const wasm = fetch(new URL("floor_ui_bg.wasm", import.meta.url));
const { default: init } = await import("./floor_ui.js");
await init({ module_or_path: wasm });
