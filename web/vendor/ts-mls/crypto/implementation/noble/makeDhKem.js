export * from "../default/makeDhKem.js";
//# sourceMappingURL=makeDhKem.js.map