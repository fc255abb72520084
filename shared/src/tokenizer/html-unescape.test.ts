import { describe, expect, it } from 'vitest';
import { htmlUnescape } from './html-unescape.ts';

// Expected strings are Python 3.11 html.unescape outputs for the same inputs (the CLIP reference runs it twice).
describe('htmlUnescape (Python html.unescape semantics)', () => {
  it.each<[string, string]>([
    ['&amp; &lt; &gt; &quot; &#39;', '& < > " \''],
    ['&amp &AMP; &AMP &copy', '& & & ©'],
    ['&notit; &notin; &not', '¬it; ∉ ¬'],
    ['&ampfoo; &amp;amp;', '&foo; &amp;'],
    ['&nbsp;x&hellip;', '\u00a0x…'],
    ['&#65;&#x42;&#X43 &#x1F600;', 'ABC 😀'],
    ['&#0; &#xD800; &#x110000; &#99999999999999999999;', '\ufffd \ufffd \ufffd \ufffd'],
    ['&#128;&#150;&#13;', '€–\r'],
    ['a&#1;b&#x7f;c&#xFFFE;d&#xFDD0;e', 'abcde'],
    ['&constructor; &toString; &__proto__;', '&constructor; &toString; &__proto__;'],
    ['&; &#; &#x; & &&amp;', '&; &#; &#x; & &&'],
    ['&Aacute &aacutex', 'Á áx'],
    ['no entities at all', 'no entities at all'],
  ])('unescapes %j', (input, expected) => {
    expect(htmlUnescape(input)).toBe(expected);
  });

  it('is applied once per call, so double-escaped text needs two calls (as CLIP does)', () => {
    expect(htmlUnescape('&amp;lt;')).toBe('&lt;');
    expect(htmlUnescape(htmlUnescape('&amp;lt;'))).toBe('<');
  });
});
