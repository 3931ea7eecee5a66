// The one number formatter, the same algorithm as app/core/numbers.py (a browser test feeds both
// the same values): a count with the SI prefix that keeps its mantissa in [1, 1000), rounded to
// two decimals half away from zero in integer arithmetic (BigInt, so no float rounds it), trailing
// zeros dropped: 642 K, 614.31 M, 138.36 M. Show the exact count (exactCount) beside it or on hover.

export const PREFIXES = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
const DECIMALS = 2;
const HUNDREDTHS = 10n ** BigInt(DECIMALS);

const toBig = (value) => {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new RangeError(`not a whole count: ${value}`);
  return BigInt(value);
};

const grouped = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// The exact count with thousands separators: 642,000.
export function exactCount(value) {
  const big = toBig(value);
  return big < 0n ? `-${grouped((-big).toString())}` : grouped(big.toString());
}

function mantissaHundredths(magnitude, power) {
  const scale = 1000n ** BigInt(power);
  return (magnitude * HUNDREDTHS * 2n + scale) / (2n * scale);
}

// A count with the prefix that keeps its mantissa in [1, 1000): 642 K, 0 (not 0 K), -1.5 M.
export function siCount(value) {
  const big = toBig(value);
  const sign = big < 0n ? '-' : '';
  const magnitude = big < 0n ? -big : big;
  if (magnitude < 1000n) return `${sign}${magnitude}`;
  let power = Math.min(Math.floor((magnitude.toString().length - 1) / 3), PREFIXES.length - 1);
  let hundredths = mantissaHundredths(magnitude, power);
  if (hundredths >= 1000n * HUNDREDTHS && power + 1 < PREFIXES.length) {
    power += 1; // 999,999 rounds to 1000.00 K: that is 1 M
    hundredths = mantissaHundredths(magnitude, power);
  }
  const whole = hundredths / HUNDREDTHS;
  const decimals = (hundredths % HUNDREDTHS).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return `${sign}${grouped(whole.toString())}${decimals ? `.${decimals}` : ''} ${PREFIXES[power]}`;
}

// A difference: +1.2 M, -642 K, or 0.
export function signedSiCount(value) {
  const big = toBig(value);
  return big > 0n ? `+${siCount(big)}` : siCount(big);
}
