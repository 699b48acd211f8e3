// Loads the wasm bundle written by wasm-bindgen (--target web). Kept out of index.html so
// the content security policy needs no inline scripts.
import init from "./left4me_ui.js";
await init();
