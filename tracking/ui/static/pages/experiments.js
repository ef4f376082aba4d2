// experiments page: placeholder until its module lands.
import { route, h, clear } from '../lib.js';

route('/experiments', 'experiments', (ctx) => { clear(ctx.main, h('h1', null, 'Experiments')); });
