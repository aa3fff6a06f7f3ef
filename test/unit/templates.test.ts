import assert from 'node:assert/strict';
import { escapeHtml, parseTemplate, renderTemplate, validateTemplate } from '../../shared/templates';

describe('templates', () => {
  const values = { first_name: 'Ada <script>', city: '', 'custom.score': 7, lead_id: 'ld_1' };
  it('interpolates fields, custom fields and defaults', () => {
    assert.equal(renderTemplate('Hi {first_name}, score {custom.score}, {city|unknown} ({lead_id})', values), 'Hi Ada <script>, score 7, unknown (ld_1)');
  });
  it('escapes values in HTML but not in text, and never the template itself', () => {
    assert.equal(renderTemplate('<b>{first_name}</b>', values, { html: true }), '<b>Ada &lt;script&gt;</b>');
    assert.equal(renderTemplate('<b>{first_name}</b>', values), '<b>Ada <script></b>');
    assert.equal(escapeHtml(`"'&`), '&quot;&#39;&amp;');
  });
  it('keeps literal braces written twice', () => {
    assert.equal(renderTemplate('{{not a var}} {first_name|x}', {}), '{not a var} x');
    assert.deepEqual(parseTemplate('a{b|c d}e'), ['a', { path: 'b', fallback: 'c d' }, 'e']);
  });
  it('reports unknown variables and syntax errors when the endpoint is saved', () => {
    assert.deepEqual(validateTemplate('Hi {frist_name}', 'subject'), [{ path: 'subject', message: '{frist_name} is not a lead field (use e.g. {first_name}, {custom.<key>}, {lead_id})' }]);
    assert.match(validateTemplate('Hi {first_name', 'subject')[0]!.message, /unclosed/);
    assert.match(validateTemplate('Hi }', 'subject')[0]!.message, /unmatched/);
    assert.deepEqual(validateTemplate('Hi {first_name} {custom.any_key}', 'subject'), []);
  });
});
