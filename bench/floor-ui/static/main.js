import init from "./floor_ui.js";
await init();
