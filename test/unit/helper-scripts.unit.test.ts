import { helperScript } from '../../driver/kernel/helper-scripts';

test('a missing helper is an error naming every place it was looked for', () => {
  expect(() => helperScript('no-such-helper.js')).toThrow(/no-such-helper\.js is missing \(looked for .*driver\/kernel\/no-such-helper\.js, .*kernel\/kernel\/no-such-helper\.js, .*dist\/driver\/kernel\/no-such-helper\.js\)/);
});
