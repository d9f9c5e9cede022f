export * from "../default/makeNobleSignatureImpl.js";
//# sourceMappingURL=makeNobleSignatureImpl.js.map