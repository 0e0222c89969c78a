// Compiled by `tsc --noEmit` only: the README's uses of the API type-check.
import { connect, GatewayError, State, type Dispatch, type StateName } from '../src/index.js';

const client = connect({ url: 'ws://127.0.0.1:3005', getToken: async () => 'jwt', guildIds: ['g1'] });
client.on<{ text: string }>('message.create', (d: Dispatch<{ text: string }>) => {
  const text: string = d.data.text;
  const seq: number = d.seq;
  void [text, seq, d.guildId];
});
client.on('state', ({ state, previous }) => {
  const s: StateName = state;
  void [s, previous === State.CLOSED];
});
client.on('error', (e) => void e.code);
client.once('closed', ({ code }) => void code);
async function demo(): Promise<void> {
  await client.subscribe('g2');
  await client.unsubscribe('g2');
  const reply = await client.request<{ ok: boolean }>('chat.send', { text: 'hi' }, { timeout: 5000 });
  const ok: boolean = reply.data.ok;
  const sync = await client.sync();
  client.send('typing.start', { guildId: 'g1', channelId: 'c1' });
  void [ok, sync.data, new GatewayError('x', 'y')];
  client.close();
}
void demo;
