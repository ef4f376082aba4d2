// run page: placeholder until its module lands.
import { route, h, clear } from '../lib.js';

