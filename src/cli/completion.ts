export const completionCommand = null as any;
