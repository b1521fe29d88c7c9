/** A count with the noun it needs: "1 process", "3 processes", "1 restart". Pure. */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
